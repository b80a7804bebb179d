"""Every shared object in the image, indexed by ELF SONAME and by file name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ldfix.image.base import Kind, Stat
from ldfix.image.pathwalk import Walker
from ldfix.loader.elf import ElfInfo, probe_any
from ldfix.loader.ldconf import is_dso_name
from ldfix.loader.platform import LoaderPlatform

SKIP_DIRS = frozenset({"/proc", "/sys", "/dev", "/run", "/var/cache/apt", "/var/lib/apt", "/usr/share/doc",
                       "/usr/share/man", "/usr/share/locale", "/usr/include", "/boot"})


@dataclass(frozen=True)
class Candidate:
    path: str  # where it was seen
    realpath: str
    info: ElfInfo


@dataclass
class LibraryIndex:
    by_soname: dict[str, list[Candidate]] = field(default_factory=dict)
    by_name: dict[str, list[str]] = field(default_factory=dict)  # file name -> paths (files and links)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    hwcaps_dirs: list[str] = field(default_factory=list)  # every directory named glibc-hwcaps
    package_dirs: list[str] = field(default_factory=list)  # every site-packages / dist-packages directory
    files_seen: int = 0

    def candidates(self, soname: str) -> list[Candidate]:
        return self.by_soname.get(soname, [])

    def sonames(self) -> set[str]:
        return set(self.by_soname)

    def good_candidates(self, soname: str, platform: LoaderPlatform) -> list[Candidate]:
        """The candidates the image's loader could load: its ELF class and machine."""
        return [c for c in self.candidates(soname)
                if c.info.elf_class == platform.elf_class and c.info.machine == platform.machine]


def build_index(walker: Walker, roots: tuple[str, ...] = ("/",),
                progress: Callable[[int], None] | None = None) -> LibraryIndex:
    """Walk the image (physical directories only, each once) and read the ELF header of every `*.so*`."""
    index = LibraryIndex()
    seen_real: dict[str, Candidate | None] = {}
    stack = list(roots)
    visited: set[str] = set()
    while stack:
        d = stack.pop()
        if d in visited or d in SKIP_DIRS:
            continue
        visited.add(d)
        entries = sorted(walker.fs.kinds(d))
        prefix = d if d.endswith("/") else d + "/"
        for name, kind in entries:
            path = prefix + name
            if kind is Kind.DIR:
                stack.append(path)
                if name == "glibc-hwcaps":
                    index.hwcaps_dirs.append(path)
                elif name in ("site-packages", "dist-packages"):
                    index.package_dirs.append(path)
                continue
            if ".so" not in name or not _looks_like_library(name):
                continue
            index.files_seen += 1
            if progress and index.files_seen % 500 == 0:
                progress(index.files_seen)
            index.by_name.setdefault(name, []).append(path)
            # the walk enters real directories only, so a file here is its own real path; a link is resolved
            found = walker.stat(path) if kind is not Kind.FILE else _own(walker, path)
            if found is None:
                if kind is Kind.LINK:
                    index.unreadable.append((path, "dangling or looping symlink"))
                continue
            real, rst = found
            if rst.kind is not Kind.FILE:
                continue
            if real in seen_real:
                continue
            try:
                result = probe_any(walker.reader(real))
            except OSError as err:
                index.unreadable.append((real, f"unreadable: {err.strerror or err}"))
                seen_real[real] = None
                continue
            if result.info is None:
                if rst.size > 0 and result.error not in ("invalid ELF header",):
                    index.unreadable.append((real, result.error or "not an ELF file"))
                seen_real[real] = None
                continue
            cand = Candidate(path, real, result.info)
            seen_real[real] = cand
            index.by_soname.setdefault(result.info.soname or name, []).append(cand)
    return index


def _own(walker: Walker, path: str) -> tuple[str, Stat] | None:
    st = walker.lstat(path)
    return None if st is None else (path, st)


_LIB_RE = re.compile(r"\.so(\.[0-9][0-9A-Za-z_.]*)?$")


def _looks_like_library(name: str) -> bool:
    """Names the loader or ldconfig could take as a library (not ld.so.conf, ld.so.cache...)."""
    if ".so" not in name or name.endswith((".conf", ".cache", ".preload", ".d", ".py", ".txt", ".h")):
        return False
    return bool(_LIB_RE.search(name)) or is_dso_name(name)
