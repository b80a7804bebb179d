"""`/etc/ld.so.conf` and what `ldconfig` would write from it (elf/ldconfig.c, read in source).

The loader never reads ld.so.conf; ldfix models ldconfig to tell a fresh cache from a stale one and to
verify fixes that add a `ld.so.conf.d` file.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass

from ldfix.image.base import Kind
from ldfix.image.pathwalk import PathError, Walker
from ldfix.loader.elf import probe_any
from ldfix.loader.ldcache import HWCAP_EXTENSION, CacheEntry, LdCache, libcmp
from ldfix.loader.platform import LoaderPlatform

CONF = "/etc/ld.so.conf"


@dataclass(frozen=True)
class ConfDir:
    path: str
    source: str  # the conf file (or "<system>") that named it
    line: int


def parse_conf(walker: Walker, filename: str = CONF, _depth: int = 0) -> list[ConfDir]:
    """Directories named by the conf file and its includes, in the order ldconfig scans them."""
    if _depth > 16:
        return []
    try:
        found = walker.stat(filename)
        if found is None or found[1].kind is not Kind.FILE:
            return []
        text = walker.read(filename, 0, max(found[1].size, 1 << 16)).decode("utf-8", "surrogateescape")
    except OSError:
        return []
    out: list[ConfDir] = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].lstrip()
        if not line:
            continue
        if line.startswith("include") and len(line) > 7 and line[7] in " \t":
            for pattern in re.split(r"[ \t]", line[8:]):
                if not pattern:
                    continue
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(filename), pattern)
                for inc in glob(walker, pattern):
                    out.extend(parse_conf(walker, inc, _depth + 1))
        elif line[:5].lower() == "hwcap" and len(line) > 5 and line[5] in " \t":
            continue
        else:
            out.append(ConfDir(_clean_dir(line), filename, lineno))
    return out


def _clean_dir(line: str) -> str:
    if "=" in line:  # an obsolete `dir=TYPE` suffix
        line = line.split("=", 1)[0]
    line = line.rstrip()
    while len(line) > 1 and line.endswith("/"):
        line = line[:-1]
    return line


def glob(walker: Walker, pattern: str) -> list[str]:
    """POSIX glob over the image: sorted in byte order, hidden names only matched by a leading dot."""
    parts = [p for p in pattern.split("/") if p]
    paths = ["/"]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[str] = []
        for base in paths:
            if not any(c in part for c in "*?["):
                cand = posixpath.join(base, part)
                if walker.stat(cand) is not None:
                    nxt.append(cand)
                continue
            for name in walker.listdir(base):
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    cand = posixpath.join(base, name)
                    if last or walker.is_dir(cand):
                        nxt.append(cand)
        paths = nxt
    return sorted(set(paths), key=lambda s: s.encode("utf-8", "surrogateescape"))


def is_dso_name(name: str) -> bool:
    """elf/dl-is_dso.h: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*."""
    return ((name.startswith(("lib", "ld-")) and ".so" in name) or name.startswith(("ld.so.", "ld64.so.")))


@dataclass(frozen=True)
class _Lib:
    name: str
    soname: str
    flags: int
    is_link: bool


LEGACY_HWCAP_BITS = {"tls": 1 << 63, "x86_64": 0x2, "avx512_1": 0x4, "sse2": 0x1}


def _elf_flags(elf_class: int, machine: int, platform: LoaderPlatform) -> int | None:
    """The flag word ldconfig records; None for a file it leaves out (another machine than the loader's,
    other than its 32-bit sibling, observed with ldconfig 2.36 on x86-64)."""
    if elf_class == platform.elf_class and machine == platform.machine:
        return platform.cache_flag
    if elf_class == 32 and platform.elf_class == 64:
        return 0x0001
    return None


def scan_dirs(walker: Walker, platform: LoaderPlatform, extra_conf: list[ConfDir] | None = None
              ) -> tuple[list[ConfDir], LdCache]:
    """The cache `ldconfig` would build now: conf dirs in order, then the trusted dirs, each scanned once."""
    dirs = parse_conf(walker) + (extra_conf or [])
    trusted = list(platform.default_dirs)  # Debian patches ldconfig to trust all four
    dirs += [ConfDir(d, "<system>", 0) for d in trusted]
    seen: set[str] = set()
    ordered: list[ConfDir] = []
    entries: list[CacheEntry] = []
    for d in dirs:
        try:
            real = walker.resolve(d.path)
        except PathError:
            continue
        if not walker.is_dir(real) or real in seen:
            continue
        seen.add(real)
        ordered.append(d)
        entries.extend(_scan_one(walker, platform, d.path, None))
        if platform.glibc is not None and platform.glibc < (2, 37):
            entries.extend(_scan_legacy(walker, platform, d.path, 0, seen))
        if platform.has_hwcaps_dirs:
            hw = posixpath.join(d.path, "glibc-hwcaps")
            for sub in sorted(walker.listdir(hw)):
                subpath = posixpath.join(hw, sub)
                try:
                    subreal = walker.resolve(subpath)
                except PathError:
                    continue
                if walker.is_dir(subreal) and subreal not in seen:
                    seen.add(subreal)
                    entries.extend(_scan_one(walker, platform, subpath, sub))
    # as ldconfig's writer orders equal sonames: higher flags, then glibc-hwcaps entries, then insertion
    # order (so the directory scanned first wins); the sort is stable
    entries.sort(key=lambda e: (-e.flags, e.hwcaps_subdir is None))
    return ordered, LdCache("model", entries)


def _scan_legacy(walker: Walker, platform: LoaderPlatform, directory: str, bits: int, seen: set[str]
                 ) -> list[CacheEntry]:
    """glibc < 2.37 ldconfig also scans tls/ and hwcap-named subdirectories, recording their bits."""
    out: list[CacheEntry] = []
    for name in sorted(walker.listdir(directory)):
        if name not in LEGACY_HWCAP_BITS:
            continue
        sub = posixpath.join(directory, name)
        try:
            real = walker.resolve(sub)
        except PathError:
            continue
        if not walker.is_dir(real) or real in seen:
            continue
        seen.add(real)
        subbits = bits | LEGACY_HWCAP_BITS[name]
        out.extend(_scan_one(walker, platform, sub, None, subbits))
        out.extend(_scan_legacy(walker, platform, sub, subbits, seen))
    return out


def _scan_one(walker: Walker, platform: LoaderPlatform, directory: str, hwcaps: str | None, legacy_bits: int = 0
              ) -> list[CacheEntry]:
    libs: dict[str, _Lib] = {}
    for name in walker.listdir(directory):
        if ";" in name or name.endswith((".dpkg-new", ".dpkg-tmp")) or "#prelink#" in name:
            continue
        if not is_dso_name(name):
            # in a glibc-hwcaps subdirectory ldconfig also follows symlinks of any name
            st0 = walker.lstat(posixpath.join(directory, name))
            if hwcaps is None or st0 is None or st0.kind is not Kind.LINK:
                continue
        path = posixpath.join(directory, name)
        st = walker.lstat(walker.resolve(path, follow_last=False)) if _safe(walker, path) else None
        if st is None:
            continue
        is_link = st.kind is Kind.LINK
        target = walker.stat(path)
        if target is None or target[1].kind is not Kind.FILE or target[1].size == 0:
            continue
        real = target[0]
        info = probe_any(walker.reader(real)).info  # any class and machine: the flags tell them apart
        if info is None:
            continue
        soname = info.soname or name
        if is_link and name != soname and not (name.endswith(".so") and soname.startswith(name)):
            is_link = False
        if is_link:
            soname = name
        flags = _elf_flags(info.elf_class, info.machine, platform)
        if flags is None:
            continue
        cur = libs.get(soname)
        if cur is None or (not is_link and cur.is_link) or (is_link == cur.is_link and libcmp(cur.name, name) < 0):
            libs[soname] = _Lib(name, soname, flags, is_link)
    out = []
    for lib in libs.values():
        if hwcaps is None:
            out.append(CacheEntry(lib.soname, posixpath.join(directory, lib.soname), lib.flags, legacy_bits))
        else:
            out.append(CacheEntry(lib.soname, posixpath.join(directory, lib.name), lib.flags, HWCAP_EXTENSION,
                                  hwcaps))
    return out


def _safe(walker: Walker, path: str) -> bool:
    try:
        walker.resolve(path, follow_last=False)
        return True
    except PathError:
        return False
