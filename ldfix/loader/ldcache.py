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


@dataclass(frozen=True)
class RawEntry:
    """One slot of a cache file's table as the loader sees it: a key or value offset outside the string
    table is None (glibc checks each pointer only when its binary search reaches that slot)."""

    soname: str | None
    path: str | None
    flags: int
    hwcap: int
    named: bool  # the glibc-hwcaps extension bit is set
    hwcaps_subdir: str | None  # None for a named entry whose subdirectory index is out of range


@dataclass
class LdCache:
    fmt: str  # "old" | "compat" | "new" | "model" (built by the ldconfig model, not read from a file)
    entries: list[CacheEntry]
    generator: str | None = None
    table: list[RawEntry] | None = None  # a file's table in file order; None for a model-built cache
    _index: dict[str, list[CacheEntry]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for e in self.entries:
            self._index.setdefault(e.soname, []).append(e)

    def lookup(self, soname: str, accept_flags: frozenset[int], hwcaps: tuple[str, ...],
               legacy_hwcap_mask: int = 0) -> CacheEntry | None:
        """The entry glibc's loader returns for `soname` (or None), given the flag words it accepts and the
        active glibc-hwcaps subdirectories in priority order."""
        if self.table is not None:
            return self._search(soname, accept_flags, hwcaps, legacy_hwcap_mask)
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

    def _search(self, name: str, accept_flags: frozenset[int], hwcaps: tuple[str, ...],
                legacy_hwcap_mask: int) -> CacheEntry | None:
        """search_cache (elf/dl-cache.c, glibc 2.36) over the file's table: a binary search that gives up at a
        bogus key, walks back to the first equal name, then forward taking the first usable entry (named
        glibc-hwcaps entries, listed first, compete by priority)."""
        table = self.table or []
        new_layout = self.fmt != "old"
        left, right = 0, len(table) - 1
        best: RawEntry | None = None
        best_prio = 0
        while left <= right:
            middle = (left + right) // 2
            key = table[middle].soname
            if key is None:
                return None
            cmp = libcmp(name, key)
            if cmp == 0:
                left = middle
                while middle > 0:
                    before = table[middle - 1].soname
                    if before is None or libcmp(name, before) != 0:
                        break
                    middle -= 1
                while True:
                    e = table[middle]
                    if middle > left and (e.soname is None or libcmp(name, e.soname) != 0):
                        break
                    usable = e.flags in accept_flags and e.path is not None
                    if usable and new_layout:
                        if e.named:
                            prio = hwcaps.index(e.hwcaps_subdir) + 1 if e.hwcaps_subdir in hwcaps else 0
                            usable = prio != 0 and (best is None or prio < best_prio)
                            if usable:
                                best_prio = prio
                        elif best is not None:
                            break
                        elif e.hwcap & ~legacy_hwcap_mask:
                            usable = False  # a legacy hwcap entry this loader does not accept
                    if usable:
                        best = e
                        if not e.named:
                            break
                    middle += 1
                    if middle > right:
                        break
                break
            if cmp < 0:
                left = middle + 1
            else:
                right = middle - 1
        if best is None or best.soname is None or best.path is None:
            return None
        return CacheEntry(best.soname, best.path, best.flags, 0 if best.named else best.hwcap,
                          best.hwcaps_subdir if best.named else None)

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
        strings = data[table_end:]
        table = []
        for i in range(nlibs):
            flags, key, value = struct.unpack_from("<iII", data, 16 + i * 12)
            table.append(RawEntry(_cstr_or_none(strings, key), _cstr_or_none(strings, value), flags, 0, False, None))
        return _from_table("old", table, None)
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
    table = []
    for i in range(nlibs):
        flags, key, value, _osv, hwcap = struct.unpack_from("<iIIIQ", data, base + 48 + i * 24)
        named = (hwcap >> 32) & ~ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32
        subdir = None
        if named:
            index = hwcap & 0xFFFFFFFF
            subdir = subdirs[index] if index < len(subdirs) else None  # out of range: priority 0, never used
        table.append(RawEntry(_cstr_or_none(strings_base, key), _cstr_or_none(strings_base, value), flags, hwcap,
                              named, subdir))
    return _from_table(fmt, table, generator)


def _from_table(fmt: str, table: list[RawEntry], generator: str | None) -> LdCache:
    entries = [CacheEntry(e.soname, e.path, e.flags, 0 if e.named else e.hwcap, e.hwcaps_subdir if e.named else None)
               for e in table if e.soname is not None and e.path is not None and not (e.named and not e.hwcaps_subdir)]
    return LdCache(fmt, entries, generator, table)


def libcmp(a: str, b: str) -> int:
    """_dl_cache_libcmp: digit runs compare numerically, digits sort after other characters."""
    i = j = 0
    while i < len(a) and j < len(b):
        ca, cb = a[i], b[j]
        if ca.isdigit() and cb.isdigit():
            si = i
            while i < len(a) and a[i].isdigit():
                i += 1
            sj = j
            while j < len(b) and b[j].isdigit():
                j += 1
            va, vb = int(a[si:i]), int(b[sj:j])
            if va != vb:
                return -1 if va < vb else 1
            continue
        if ca.isdigit():
            return 1
        if cb.isdigit():
            return -1
        if ca != cb:
            return -1 if ca < cb else 1
        i += 1
        j += 1
    return (len(a) - i) - (len(b) - j)


def _cstr_or_none(data: bytes, off: int) -> str | None:
    try:
        return _cstr(data, off)
    except CacheFormatError:
        return None
