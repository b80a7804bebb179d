"""Dependency closure of every ELF file under /usr of a Debian bookworm image carrying real CUDA libraries
(from the nvidia-* wheels): ldfix's model in this one process against Debian's `libtree` (one process per
file, as a user or a script runs it) and pax-utils `lddtree` (all files in one process, its fastest use),
all three over the same files in the same root. Prints times, ratios and how many files each left with an
unresolved dependency.

    python3 -m bench.closure            (needs root for the libtree chroot; `apt-get install libtree pax-utils`)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import debian_with_cuda, elf_files, peak_rss_mb, timed
from ldfix.errors import LdfixError
from ldfix.image.pathwalk import Walker
from ldfix.image.rootfs import RootFS
from ldfix.loader.elf import EM_X86_64, read_elf
from ldfix.loader.ldcache import parse_cache
from ldfix.loader.platform import static_platform
from ldfix.loader.search import Searcher
from ldfix.loader.tree import load

TOOLS = "/opt/ldfix-bench"


def model(root: Path, files: list[str]) -> tuple[int, int]:
    """(files whose closure has a miss, objects loaded in total)."""
    walker = Walker(RootFS(str(root)))
    platform = static_platform(walker, 64, EM_X86_64)
    cache = parse_cache(walker.read("/etc/ld.so.cache", 0, 1 << 26))
    searcher = Searcher(walker, platform, {}, "/", cache)
    missing = loaded = 0
    for path in files:
        try:
            info = read_elf(walker.reader(path))
        except LdfixError:
            continue
        closure = load(searcher, path, info)
        loaded += len(closure.objects)
        missing += bool(closure.missing or closure.fatal)
    return missing, loaded


def libtree_each(root: Path, files: list[str]) -> int:
    """libtree once per file inside a chroot of ROOT (so it reads the image's ld.so.conf and dirs)."""
    os.makedirs(root / TOOLS.lstrip("/"), exist_ok=True)
    shutil.copy2(shutil.which("libtree") or "/usr/bin/libtree", root / TOOLS.lstrip("/") / "libtree")
    (root / TOOLS.lstrip("/") / "files").write_text("".join(f + "\n" for f in files))
    script = (f'n=0; while read -r f; do out=$({TOOLS}/libtree -p "$f" 2>&1); '
              'case "$out" in *"not found"*) n=$((n+1));; esac; done < ' + f"{TOOLS}/files; echo $n")
    proc = subprocess.run(["chroot", str(root), "/bin/sh", "-c", script], capture_output=True, text=True)
    words = proc.stdout.split()
    if proc.returncode != 0 or not words or not words[-1].isdigit():
        raise SystemExit(f"bench: libtree did not run as a baseline (exit {proc.returncode}): {proc.stderr[-800:]}")
    return int(words[-1])


def lddtree_all(root: Path, files: list[str]) -> int:
    """pax-utils lddtree over all files in one process. It is a Python script: run by this Python (which has
    pyelftools), and checked: a baseline that died at start-up must stop the bench, not print a ratio."""
    script = shutil.which("lddtree") or "lddtree"
    proc = subprocess.run([sys.executable, script, "-R", str(root), "--skip-non-elfs", *files],
                          capture_output=True, text=True)
    blocks = [line for line in proc.stdout.splitlines() if line and not line.startswith(" ")]
    # lddtree exits 1 when it warned about some files; what matters is that it ran over (nearly) all of them
    if "Traceback" in proc.stderr or len(blocks) < len(files) * 0.9:
        raise SystemExit(f"bench: lddtree did not run as a baseline (exit {proc.returncode}, {len(blocks)} of "
                         f"{len(files)} files listed): {proc.stderr[-800:]}")
    if proc.returncode != 0:
        print(f"lddtree exit {proc.returncode}: it listed {len(blocks)} of {len(files)} files "
              f"({proc.stderr.count('warning:')} warnings)", file=sys.stderr)
    misses = 0  # a file's block starts at column 0; an unresolved dependency is an indented "NAME => None"
    block_missing = False
    for line in proc.stdout.splitlines():
        if not line.startswith(" "):
            misses += block_missing
            block_missing = False
        elif line.rstrip().endswith("=> None"):
            block_missing = True
    return misses + block_missing


def main() -> int:
    for tool in ("libtree", "lddtree"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: apt-get install -y libtree pax-utils", file=sys.stderr)
            return 3
    root = debian_with_cuda("closure")
    files = elf_files(root)
    size = sum((root / f.lstrip("/")).stat().st_size for f in files)
    print(f"files: {len(files)} ELF files under /usr ({size / 1e9:.2f} GB), root {root}")
    times: dict[str, float] = {}
    with timed("ldfix", times):
        m_missing, loaded = model(root, files)
    rss = peak_rss_mb()
    with timed("libtree", times):
        t_missing = libtree_each(root, files)
    with timed("lddtree", times):
        d_missing = lddtree_all(root, files)
    print(f"ldfix model, one process : {times['ldfix']:8.2f} s  ({loaded} objects loaded, "
          f"{m_missing} files with a miss, peak RSS {rss:.0f} MB)")
    print(f"libtree, once per file   : {times['libtree']:8.2f} s  ({t_missing} files with 'not found')")
    print(f"lddtree, one process     : {times['lddtree']:8.2f} s  ({d_missing} files with '=> None')")
    print(f"ratio libtree / ldfix    : {times['libtree'] / times['ldfix']:8.1f}x  (target > 1)")
    print(f"ratio lddtree / ldfix    : {times['lddtree'] / times['ldfix']:8.1f}x  (target >= 20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
