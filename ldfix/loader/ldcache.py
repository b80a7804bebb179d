"""`/etc/ld.so.cache`: parsing (old, compat and 1.1 formats, hwcaps extension) and glibc's lookup.

Layouts follow sysdeps/generic/dl-cache.h; the lookup follows search_cache in elf/dl-cache.c.
A cache that glibc would ignore (bad magic, sizes past the end, wrong endianness) parses as `None` with a
reason, exactly as the loader then behaves: as if there were no cache.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
EXT_MAGIC = 0xEAA42174
HWCAP_EXTENSION = 1 << 62
ISA_LEVEL_MASK = 0x3FF
FLAG_ELF_LIBC6 = 0x0003


@dataclass(frozen=True)
class CacheEntry:
    soname: str
    path: str
    flags: int
    hwcap: int = 0
    hwcaps_subdir: str | None = None  # set for glibc-hwcaps entries


@dataclass
class LdCache:
    fmt: str  # "old" | "compat" | "new" | "model" (built by the ldconfig model, not read from a file)
    entries: list[CacheEntry]
    generator: str | None = None
    _index: dict[str, list[CacheEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for e in self.entries:
            self._index.setdefault(e.soname, []).append(e)

    def lookup(self, soname: str, accept_flags: frozenset[int], hwcaps: tuple[str, ...],
               legacy_hwcap_mask: int = 0) -> CacheEntry | None:
        """The entry glibc's loader returns for `soname` (or None), given the flag words it accepts and the
        active glibc-hwcaps subdirectories in priority order."""
        best: CacheEntry | None = None
        best_prio = len(hwcaps)
        for entry in self._index.get(soname, ()):
            if entry.flags not in accept_flags:
                continue
            if entry.hwcaps_subdir is not None:
                if entry.hwcaps_subdir in hwcaps:
                    prio = hwcaps.index(entry.hwcaps_subdir)
                    if prio < best_prio:
                        best, best_prio = entry, prio
                continue
            if best is not None:
                return best
            if entry.hwcap & ~legacy_hwcap_mask:
                continue  # a legacy hwcap entry this loader does not accept (all of them from glibc 2.37)
            return entry
        return best

    def sonames(self) -> set[str]:
        return set(self._index)

    def paths_for(self, soname: str) -> list[str]:
        return [e.path for e in self._index.get(soname, ())]


class CacheFormatError(Exception):
    pass


def _cstr(data: bytes, off: int) -> str:
    if off < 0 or off >= len(data):
        raise CacheFormatError(f"string offset {off} outside the file")
    end = data.find(b"\0", off)
    if end < 0:
        raise CacheFormatError("unterminated string")
    return data[off:end].decode("utf-8", "surrogateescape")


def parse_cache(data: bytes) -> LdCache:
    """Parse a cache file; raises CacheFormatError where glibc would ignore the file."""
    if data.startswith(NEW_MAGIC):
        return _parse_new(data, 0, "new")
    if data.startswith(OLD_MAGIC):
        if len(data) < 16:
            raise CacheFormatError("truncated header")
        (nlibs,) = struct.unpack_from("<I", data, 12)
        table_end = 16 + nlibs * 12
        if table_end > len(data):
            raise CacheFormatError("entry table runs past the end of the file")
        new_at = (table_end + 7) & ~7
        if data[new_at:new_at + len(NEW_MAGIC)] == NEW_MAGIC:
            return _parse_new(data, new_at, "compat")
        entries = []
        for i in range(nlibs):
            flags, key, value = struct.unpack_from("<iII", data, 16 + i * 12)
            entries.append(CacheEntry(_cstr(data, table_end + key), _cstr(data, table_end + value), flags))
        return LdCache("old", entries)
    raise CacheFormatError("not an ld.so.cache (unknown magic)")


def _parse_new(data: bytes, base: int, fmt: str) -> LdCache:
    if len(data) < base + 48:
        raise CacheFormatError("truncated header")
    nlibs, _len_strings, endian = struct.unpack_from("<IIB", data, base + 20)
    (ext_offset,) = struct.unpack_from("<I", data, base + 32)
    if endian == 1 or endian == 3:  # invalid, or big-endian on a little-endian loader
        raise CacheFormatError("cache byte order does not match the loader")
    if base + 48 + nlibs * 24 > len(data):
        raise CacheFormatError("entry table runs past the end of the file")
    strings_base = data[base:]
    subdirs: list[str] = []
    generator = None
    if ext_offset and ext_offset + 8 <= len(data) and ext_offset % 4 == 0:
        magic, count = struct.unpack_from("<II", data, ext_offset)
        if magic == EXT_MAGIC:
            for i in range(min(count, 64)):
                at = ext_offset + 8 + i * 16
                if at + 16 > len(data):
                    break
                tag, _flags, off, size = struct.unpack_from("<IIII", data, at)
                if off + size > len(data):
                    continue
                if tag == 0:
                    generator = data[off:off + size].decode("utf-8", "replace")
                elif tag == 1 and off % 4 == 0:
                    # the loader reads these names relative to the start of the file, not of the new header;
                    # in compat files written by ldconfig 2.33+ they therefore name garbage (and never match)
                    subdirs = [_cstr(data, o) for o in struct.unpack_from(f"<{size // 4}I", data, off)]
    entries = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = struct.unpack_from("<iIIIQ", data, base + 48 + i * 24)
        subdir = None
        if (hwcap >> 32) & ~ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32:
            index = hwcap & 0xFFFFFFFF
            if index >= len(subdirs):
                continue  # glibc skips entries whose subdirectory index is out of range
            subdir = subdirs[index]
        entries.append(CacheEntry(_cstr(strings_base, key), _cstr(strings_base, value), flags,
                                  0 if subdir else hwcap, subdir))
    return LdCache(fmt, entries, generator)
