"""Inputs the benchmarks share: real NVIDIA libraries from the `nvidia-*` wheels on PyPI (downloaded at bench
time into a cache, never committed) and a Debian bookworm root filesystem carrying them."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

CACHE = Path(os.environ.get("LDFIX_BENCH_CACHE", Path.home() / ".cache" / "ldfix-bench"))
# one wheel cache for the benches and the framework tests: the CUDA wheels are large, download them once
WHEEL_CACHE = Path(os.environ.get("LDFIX_WHEEL_CACHE", Path.home() / ".cache" / "ldfix-tests" / "wheels"))
WHEELS = ["nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cufft-cu12",
          "nvidia-curand-cu12", "nvidia-cusolver-cu12", "nvidia-cusparse-cu12", "nvidia-nvjitlink-cu12",
          "nvidia-nccl-cu12", "nvidia-cuda-nvrtc-cu12"]
SITE = "/usr/local/lib/python3.11/dist-packages"

T = TypeVar("T")


def wheels(names: list[str] = WHEELS) -> list[Path]:
    """The newest wheel of each project, downloaded once (`pip download --no-deps`)."""
    dest = WHEEL_CACHE
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        prefix = name.replace("-", "_") + "-"
        have = sorted(dest.glob(prefix + "*.whl"))
        if not have:
            print(f"downloading {name} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), name],
                           check=True)
            have = sorted(dest.glob(prefix + "*.whl"))
        out.append(have[-1])
    return out


def install_wheel(wheel: Path, root: Path, everything: bool = False) -> int:
    """Unpack the shared objects of `wheel` (or all of it) into ROOT's dist-packages; returns bytes written."""
    total = 0
    site = root / SITE.lstrip("/")
    with zipfile.ZipFile(wheel) as zf:
        for item in zf.infolist():
            if item.is_dir() or not (everything or ".so" in item.filename):
                continue
            target = site / item.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(item) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            total += item.file_size
    return total


def debian_with_cuda(tag: str, everything: bool = False, extra: Callable[[Path], None] | None = None) -> Path:
    """A copy of the test suite's Debian rootfs with the wheels' libraries unpacked, cached by its inputs."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.images import debian_rootfs

    base = debian_rootfs()
    parts = [str(base), tag, str(everything), *[w.name for w in wheels()]]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    root = CACHE / f"root-{tag}-{digest}"
    if (root / ".complete").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    for wheel in wheels():
        install_wheel(wheel, root, everything)
    if extra is not None:
        extra(root)
    (root / ".complete").write_text("ok\n")
    return root


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def elf_files(root: Path, under: str = "usr") -> list[str]:
    """Image paths of every regular ELF file under ROOT/under (symlinks not followed), sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(root / under):
        for name in files:
            full = Path(dirpath) / name
            if not full.is_symlink() and full.is_file() and is_elf(full):
                out.append("/" + str(full.relative_to(root)))
    return sorted(out)


@contextmanager
def timed(label: str, results: dict[str, float]) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        results[label] = time.perf_counter() - start


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0
