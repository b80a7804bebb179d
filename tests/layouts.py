"""Generated library layouts for differential tests: the model against the real glibc loader.

A layout is a small root filesystem holding the host's `ld.so` plus shared objects written by
`ldfix.loader.elfwrite` (any SONAME, NEEDED, RPATH, RUNPATH, class and machine), ld.so.conf files, a cache
made by the real `ldconfig -r` (fresh, stale, missing, in every format), an LD_LIBRARY_PATH and a working
directory. `real_listing` runs the real loader in a chroot of it; `model_listing` asks ldfix's model.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass, field

from ldfix.image.pathwalk import Walker
from ldfix.image.rootfs import RootFS
from ldfix.loader.elf import EM_AARCH64, read_elf
from ldfix.loader.elfwrite import build_shared_object
from ldfix.loader.ldcache import CacheFormatError, parse_cache
from ldfix.loader.platform import LoaderPlatform, static_platform, with_loader_help
from ldfix.loader.search import Searcher
from ldfix.loader.tree import Closure, load

HOST_LDSO = "/lib64/ld-linux-x86-64.so.2"
SONAMES = ["libalpha.so.1", "libbeta.so.2", "libgamma.so.3", "libdelta.so.4", "libeps.so.5", "libzeta.so.6"]
DIRS = ["/opt/a/lib", "/opt/b", "/usr/local/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
        "/usr/lib", "/srv/rp", "/work", "/work/sub"]
HWCAP_SUBDIRS = ["glibc-hwcaps/x86-64-v2", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v4", "tls",
                 "x86_64", "tls/x86_64"]


@dataclass
class Layout:
    seed: int
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    late_files: dict[str, bytes] = field(default_factory=dict)  # added after ldconfig ran (stale cache)
    late_links: dict[str, str] = field(default_factory=dict)
    conf: dict[str, str] = field(default_factory=dict)
    late_conf: dict[str, str] = field(default_factory=dict)
    cache: str = "new"  # new | compat | old | none
    ldconfig_links: bool = True
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    probe: bytes = b""
    merged_usr: bool = False

    def describe(self) -> str:
        return (f"seed={self.seed} cache={self.cache} links={self.ldconfig_links} env={self.env} cwd={self.cwd} "
                f"files={sorted(self.files)} links={self.links} late={sorted(self.late_files)} conf={self.conf}")


def _tags(rng: random.Random, here: str) -> dict[str, str | None]:
    def one() -> str:
        choice = rng.random()
        if choice < 0.5:
            return rng.choice(DIRS)
        if choice < 0.8:
            rel = os.path.relpath(rng.choice(DIRS), here)
            return "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
        return rng.choice(["${ORIGIN}", "$ORIGIN/../lib", "/opt/$LIB", "", "/nonexistent"])

    kind = rng.random()
    value = ":".join(one() for _ in range(rng.randint(1, 3)))
    if kind < 0.45:
        return {"rpath": None, "runpath": None}
    if kind < 0.7:
        return {"rpath": value, "runpath": None}
    if kind < 0.92:
        return {"rpath": None, "runpath": value}
    return {"rpath": value, "runpath": ":".join(one() for _ in range(rng.randint(1, 2)))}


def generate(seed: int) -> Layout:
    rng = random.Random(seed)
    lay = Layout(seed)
    lay.merged_usr = rng.random() < 0.2
    dirs = [d for d in DIRS if not (lay.merged_usr and d.startswith("/lib/"))]
    lay.dirs = [*list(dirs), "/etc/ld.so.conf.d"]
    needs = {s: rng.sample([t for t in SONAMES if t != s], rng.randint(0, 2)) for s in SONAMES}

    def place(target: dict[str, bytes], links: dict[str, str], soname: str) -> None:
        d = rng.choice(dirs)
        if rng.random() < 0.12:
            d = f"{d}/{rng.choice(HWCAP_SUBDIRS)}"
            lay.dirs.append(d)
        variant = rng.random()
        tags = _tags(rng, d)
        body = build_shared_object(soname, needs[soname], tags["rpath"], tags["runpath"],
                                   flags_1=0x800 if rng.random() < 0.05 else 0)
        if variant < 0.45:
            target[f"{d}/{soname}"] = body
        elif variant < 0.65:  # real file with a longer name; the soname link may be missing
            target[f"{d}/{soname}.0.7"] = body
            if rng.random() < 0.5:
                links[f"{d}/{soname}"] = f"{soname}.0.7"
        elif variant < 0.72:  # symlink chain through another directory
            other = rng.choice(dirs)
            target[f"{other}/real-{soname}"] = body
            links[f"{d}/mid-{soname}"] = f"{other}/real-{soname}"
            links[f"{d}/{soname}"] = f"mid-{soname}"
        elif variant < 0.80:
            target[f"{d}/{soname}"] = build_shared_object(soname, [], elf_class=32)
        elif variant < 0.87:
            target[f"{d}/{soname}"] = build_shared_object(soname, [], machine=EM_AARCH64)
        elif variant < 0.92:
            links[f"{d}/{soname}"] = f"{soname}.gone"
        elif variant < 0.95:
            target[f"{d}/{soname}"] = b"\x7fELF short"  # the loader stops: file too short
        else:  # a dev-style link and a versioned file, nothing under the soname itself
            target[f"{d}/{soname}.9"] = body
            links[f"{d}/{soname.split('.so')[0]}.so"] = f"{soname}.9"

    for soname in SONAMES:
        for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3])):
            place(lay.files, lay.links, soname)
    lines = rng.sample(dirs, rng.randint(0, 4))
    if rng.random() < 0.6:
        lay.conf["/etc/ld.so.conf"] = "include /etc/ld.so.conf.d/*.conf\n" + (
            "# a comment\n" if rng.random() < 0.5 else "")
        for i, line in enumerate(lines):
            lay.conf[f"/etc/ld.so.conf.d/{rng.choice('abz')}{i}.conf"] = f"{line}{rng.choice(['', '/'])}\n"
    else:
        lay.conf["/etc/ld.so.conf"] = "".join(f"{d}\n" for d in lines)
    cache = rng.random()
    lay.cache = "none" if cache < 0.1 else "old" if cache < 0.2 else "compat" if cache < 0.3 else "new"
    lay.ldconfig_links = rng.random() < 0.7
    if lay.cache != "none" and rng.random() < 0.3:  # stale: more libraries arrive after ldconfig ran
        for soname in rng.sample(SONAMES, 2):
            place(lay.late_files, lay.late_links, soname)
        if rng.random() < 0.5:
            lay.late_conf["/etc/ld.so.conf.d/late.conf"] = rng.choice(dirs) + "\n"
    lay.cwd = rng.choice(["/", "/work", "/opt/b"])
    env = rng.random()
    if env < 0.2:
        pass
    elif env < 0.25:
        lay.env["LD_LIBRARY_PATH"] = ""
    else:
        parts = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.6:
                parts.append(rng.choice(dirs) + rng.choice(["", "", "/", "#"]))
            elif r < 0.7:
                parts.append("")
            elif r < 0.8:
                parts.append(rng.choice(["lib", "sub", "../work"]))
            elif r < 0.9:
                parts.append(rng.choice(["$ORIGIN/opt/b", "${ORIGIN}/work", "/opt/$LIB"]))
            else:
                parts.append("/missing/dir")
        lay.env["LD_LIBRARY_PATH"] = "".join(p + rng.choice([":", ":", ";"]) for p in parts)[:-1]
    probe_tags = _tags(rng, "/")
    lay.probe = build_shared_object(None, rng.sample(SONAMES, rng.randint(1, 4)), probe_tags["rpath"],
                                    probe_tags["runpath"], flags_1=0x800 if rng.random() < 0.05 else 0)
    return lay


def _write(root: str, files: dict[str, bytes], links: dict[str, str], conf: dict[str, str]) -> None:
    for path, data in files.items():
        full = root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if os.path.lexists(full):
            os.unlink(full)
        with open(full, "wb") as fh:
            fh.write(data)
    for path, target in links.items():
        full = root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if not os.path.lexists(full):
            os.symlink(target, full)
    for path, text in conf.items():
        full = root + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as fh:
            fh.write(text)


def materialize(lay: Layout, root: str) -> None:
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root + "/lib64")
    if lay.merged_usr:
        os.makedirs(root + "/usr/lib/x86_64-linux-gnu", exist_ok=True)
        os.symlink("usr/lib", root + "/lib")
    for d in lay.dirs:
        os.makedirs(root + d, exist_ok=True)
    shutil.copy2(HOST_LDSO, root + "/lib64/ld-linux-x86-64.so.2")
    _write(root, lay.files, lay.links, lay.conf)
    with open(root + "/probe.so", "wb") as fh:
        fh.write(lay.probe)
    if lay.cache != "none":
        args = ["ldconfig", "-r", root, "-c", lay.cache]
        if not lay.ldconfig_links:
            args.append("-X")
        if subprocess.run(args, capture_output=True).returncode != 0:
            # ldconfig 2.36 aborts ("free(): invalid size") writing some compat caches: use the default format
            lay.cache = "new"
            subprocess.run(["ldconfig", "-r", root, *args[5:]], check=True, capture_output=True)
    _write(root, lay.late_files, lay.late_links, lay.late_conf)


def run_real(root: str, lay: Layout) -> tuple[list[tuple[str, str | None]], str | None]:
    """The real loader's listing of /probe.so in a chroot, and its fatal error if any."""
    env = {"LD_TRACE_LOADED_OBJECTS": "1", **lay.env}
    cwd = lay.cwd

    def enter() -> None:
        os.chroot(root)
        os.chdir(cwd)

    proc = subprocess.run([HOST_LDSO, "/probe.so"], preexec_fn=enter, env=env, capture_output=True, text=True,
                          timeout=20)
    listing = parse_trace(proc.stdout)
    fatal = None
    if proc.returncode != 0:
        marker = "error while loading shared libraries: "
        at = proc.stderr.find(marker)
        fatal = proc.stderr[at + len(marker):].strip() if at >= 0 else proc.stderr.strip()
    return listing, fatal


def parse_trace(text: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("linux-vdso", HOST_LDSO)) or line == "statically linked":
            continue
        if " => " in line:
            name, rest = line.split(" => ", 1)
            out.append((name, None if rest == "not found" else rest.rsplit(" (0x", 1)[0]))
        else:
            name = line.rsplit(" (0x", 1)[0]
            out.append((name, name))
    return out


_HOST_PLATFORM: LoaderPlatform | None = None


def host_platform(walker: Walker) -> LoaderPlatform:
    """The static platform, refined with this machine's `ld.so --help` (hwcaps depend on the CPU)."""
    global _HOST_PLATFORM
    if _HOST_PLATFORM is None:
        text = subprocess.run([HOST_LDSO, "--help"], capture_output=True, text=True).stdout
        _HOST_PLATFORM = with_loader_help(static_platform(walker, 64, 62), text)
    base = static_platform(walker, 64, 62)
    return LoaderPlatform(**{**base.__dict__, "hwcaps": _HOST_PLATFORM.hwcaps})


def run_model(root: str, lay: Layout) -> tuple[Closure, list[tuple[str, str | None]], str | None]:
    walker = Walker(RootFS(root))
    platform = host_platform(walker)
    cache = None
    if os.path.exists(root + "/etc/ld.so.cache"):
        try:
            with open(root + "/etc/ld.so.cache", "rb") as fh:
                cache = parse_cache(fh.read())
        except CacheFormatError:
            cache = None
    searcher = Searcher(walker, platform, lay.env, lay.cwd, cache)
    info = read_elf(lambda o, n: walker.read("/probe.so", o, n))
    closure = load(searcher, "/probe.so", info)
    fatal = closure.fatal.error if closure.fatal else None
    return closure, closure.listing(), fatal
