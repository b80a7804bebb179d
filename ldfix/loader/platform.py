"""Facts about the image's glibc loader that the search depends on.

They come from the image's own `ld.so --help` when it can run here (oracle), otherwise from its
architecture, layout and glibc version (loader reference §5, §7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ldfix.image.pathwalk import Walker
from ldfix.loader.elf import EM_386, EM_AARCH64, EM_PPC64, EM_S390, EM_X86_64

# Debian triplet, CUDA targets dir, PT_INTERP, ld.so.cache flag word
ARCHES: dict[int, tuple[str, str, str, int]] = {
    EM_X86_64: ("x86_64-linux-gnu", "x86_64-linux", "/lib64/ld-linux-x86-64.so.2", 0x0303),
    EM_AARCH64: ("aarch64-linux-gnu", "sbsa-linux", "/lib/ld-linux-aarch64.so.1", 0x0A03),
    EM_PPC64: ("powerpc64le-linux-gnu", "ppc64le-linux", "/lib64/ld64.so.2", 0x0503),
    EM_S390: ("s390x-linux-gnu", "s390x-linux", "/lib/ld64.so.1", 0x0403),
    EM_386: ("i386-linux-gnu", "i386-linux", "/lib/ld-linux.so.2", 0x0003),
}


@dataclass(frozen=True)
class LoaderPlatform:
    elf_class: int = 64
    machine: int = EM_X86_64
    default_dirs: tuple[str, ...] = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
    lib_token: str = "lib/x86_64-linux-gnu"
    platform_token: str | None = None  # depends on the host CPU; None when not known
    hwcaps: tuple[str, ...] = ()  # active glibc-hwcaps subdirectories, best first
    legacy_subdirs: tuple[str, ...] = ()  # tls/platform subdirectories (glibc < 2.37), in search order
    legacy_hwcap_mask: int = 0  # legacy cache hwcap bits this loader accepts (glibc < 2.37); 0 = none
    cache_flags: frozenset[int] = frozenset({0x0303})
    glibc: tuple[int, int] | None = None
    interp: str = "/lib64/ld-linux-x86-64.so.2"
    source: str = "static"  # "static" (inferred) or "ld.so" (asked the image's loader)

    @property
    def triplet(self) -> str:
        return ARCHES.get(self.machine, ARCHES[EM_X86_64])[0]

    @property
    def cuda_target(self) -> str:
        return ARCHES.get(self.machine, ARCHES[EM_X86_64])[1]

    @property
    def cache_flag(self) -> int:
        return ARCHES.get(self.machine, ARCHES[EM_X86_64])[3]

    @property
    def has_hwcaps_dirs(self) -> bool:
        return self.glibc is None or self.glibc >= (2, 33)


_VERSION_RE = re.compile(rb"(?:release version|GLIBC) (\d+)\.(\d+)")


def detect_glibc(walker: Walker, triplet: str, interp: str | None = None) -> tuple[int, int] | None:
    """The image's glibc version: from the loader binary's own version banner, the cache generator string,
    a versioned libc file name or the dpkg status."""
    if interp:
        try:
            found = walker.stat(interp)
            if found is not None:
                blob = walker.read(interp, 0, min(found[1].size, 4 << 20))
                m0 = re.search(rb"release version (\d+)\.(\d+)", blob)
                if m0:
                    return int(m0.group(1)), int(m0.group(2))
        except OSError:
            pass
    try:
        head = walker.read("/etc/ld.so.cache", 0, 1 << 20)
        m = re.search(rb"stable release version (\d+)\.(\d+)", head)
        if m:
            return int(m.group(1)), int(m.group(2))
    except OSError:
        pass
    for d in (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        for name in walker.listdir(d):
            m2 = re.fullmatch(r"libc-(\d+)\.(\d+)\.so", name)
            if m2:
                return int(m2.group(1)), int(m2.group(2))
    try:
        status = walker.read("/var/lib/dpkg/status", 0, 64 << 20)
        m3 = re.search(rb"Package: libc6\n(?:[^\n]+\n)*?Version: (\d+)\.(\d+)", status)
        if m3:
            return int(m3.group(1)), int(m3.group(2))
    except OSError:
        pass
    return None


def static_platform(walker: Walker, elf_class: int, machine: int) -> LoaderPlatform:
    """Infer the loader's facts from the image layout (no code is run)."""
    triplet, _, interp, flag = ARCHES.get(machine, ARCHES[EM_X86_64])
    glibc = detect_glibc(walker, triplet, interp)
    multiarch = walker.is_dir(f"/usr/lib/{triplet}") or walker.is_dir(f"/lib/{triplet}")
    rhel_like = walker.is_dir("/usr/lib64") and not multiarch
    if multiarch:
        dirs: tuple[str, ...] = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
        lib = f"lib/{triplet}"
    elif rhel_like or (elf_class == 64 and machine != EM_AARCH64 and walker.is_dir("/lib64")):
        dirs = ("/lib64", "/usr/lib64")
        lib = "lib64"
    else:
        dirs = ("/lib", "/usr/lib")
        lib = "lib"
    legacy: tuple[str, ...] = ()
    legacy_mask = 0
    if glibc is not None and glibc < (2, 37) and machine == EM_X86_64:
        # observed on glibc 2.36: AT_PLATFORM and the hwcap name are both "x86_64"
        legacy = ("tls/x86_64/x86_64", "tls/x86_64", "tls", "x86_64/x86_64", "x86_64")
        # cache entries from tls/ (bit 63) and x86_64/ (HWCAP_X86_64, bit 1) subdirectories are accepted
        legacy_mask = (1 << 63) | 0x2
    accept = frozenset({flag}) if machine != EM_386 else frozenset({0x0001, 0x0003})
    return LoaderPlatform(elf_class, machine, dirs, lib, None, (), legacy, legacy_mask, accept, glibc, interp)


def with_loader_help(base: LoaderPlatform, help_text: str) -> LoaderPlatform:
    """Refine the platform with what the image's `ld.so --help` printed (glibc >= 2.33)."""
    dirs = tuple(re.findall(r"^\s+(\S+) \(system search path\)$", help_text, re.M))
    hw = tuple(re.findall(r"^\s+(\S+) \(supported, searched\)$", _section(help_text, "Subdirectories of glibc-hwcaps"),
                          re.M))
    changes: dict[str, object] = {"hwcaps": hw, "source": "ld.so"}
    if dirs:
        changes["default_dirs"] = dirs
    return replace(base, **changes)  # type: ignore[arg-type]


def _section(text: str, title: str) -> str:
    at = text.find(title)
    if at < 0:
        return ""
    rest = text[at:]
    end = rest.find("\n\n")
    return rest if end < 0 else rest[:end]
