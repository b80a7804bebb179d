"""What a scan reads of an image, as the keep policy of streamed layers (image/stream.py): a layer read once
from a registry or a compressed archive keeps these bytes and nothing else.

- whole: ld.so.conf and its includes, ld.so.cache, ld.so.preload, the dpkg status, os-release, the loader
  itself (its version banner), CUDA's version files, and Python package metadata and version modules;
- of every ELF file: the bytes the ELF reader reads (header, program headers, dynamic section, the strings
  it names), found by running that reader over the stream;
- of other `*.so*` files: their first 64 bytes (enough to tell a linker script from an ELF object).

A reader that starts to read another kind of file adds it here; a read of bytes not kept fails (NotKept)
rather than answering from wrong data."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

from ldfix.loader.elf import ElfReadError, Segments, read_elf, segments

Load = tuple[int, int, int, int]  # a PT_LOAD: vaddr, offset, filesz, flags

ELF_HEAD = 1 << 20  # ELF bytes buffered up front at least
ELF_HEAD_MAX = 64 << 20  # ... at most, for a first PT_LOAD without code (symbol and string tables only)
ELF_HEAD_CODE = 8 << 20  # ... when the first PT_LOAD holds the code too
PF_X = 1
PF_W = 2
_WHOLE_PATHS = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.preload", "/var/lib/dpkg/status",
                "/etc/os-release", "/usr/lib/os-release")
_WHOLE_DIRS = ("/etc/ld.so.conf.d",)
# matched against the name part of a path (fullmatch from the last slash: a `^` would match only at the
# start of the whole path, so no name would ever match)
_WHOLE_NAMES = re.compile(
    r"ld-.*\.so.*|ld\.so.*|METADATA|PKG-INFO|top_level\.txt|direct_url\.json|version\.(json|txt|py)"
    r"|_version\.py|build_info\.py|build_and_package_info\.py|cuda_version\.py|.*\.pth")
_CAP = 32 << 20  # a file this large is never kept whole


class ScanKeep:
    """The keep policy of a scan. `version` names what it keeps: a cache of kept bytes (--cache) made with
    another version is not replayed."""

    version = "2"  # 2: package metadata and version files kept (1 kept none), read-only segments ahead

    def whole(self, path: str, size: int) -> bool:
        if size > _CAP:
            return False
        slash = path.rfind("/")
        if path in _WHOLE_PATHS or path[:slash] in _WHOLE_DIRS:
            return True
        return size <= 8 << 20 and _WHOLE_NAMES.fullmatch(path, slash + 1) is not None

    _last: tuple[bytes, tuple[Segments, Load | None] | None] = (b"", None)

    def _layout(self, first: bytes) -> tuple[Segments, Load | None] | None:
        """The program headers of an ELF file's first bytes and its PT_LOAD at offset 0; None when they do not
        parse. `head` and `ahead` ask about the same bytes one after the other: they are parsed once."""
        if self._last[0] is not first:
            try:
                seg = segments(lambda offset, n: first[offset:offset + n], first[:64])
                self._last = (first, (seg, next((ld for ld in seg.loads if ld[1] == 0), None)))
            except ElfReadError:
                self._last = (first, None)
        return self._last[1]

    def head(self, path: str, size: int, first: bytes) -> int:
        if first[:4] != b"\x7fELF":
            return 64 if ".so" in path[path.rfind("/") + 1:] else 0
        layout = self._layout(first)
        if layout is None:
            return len(first)
        # the dynamic strings lie in the first PT_LOAD, before the code: all of it when it holds no code
        # (-z separate-code), else its first pages (or after the dynamic section, where patchelf puts them,
        # which the stream reaches later anyway)
        _, load0 = layout
        if load0 is not None and not load0[3] & PF_X:
            return max(ELF_HEAD, min(load0[2], ELF_HEAD_MAX))
        return ELF_HEAD_CODE

    def ahead(self, path: str, size: int, first: bytes) -> list[tuple[int, int]]:
        """Where the first PT_LOAD holds the code, a read-only PT_LOAD behind it but before the dynamic
        section can hold the strings the dynamic section names (some mypyc builds): the stream keeps it (up
        to ELF_HEAD_MAX in all) as it passes, since it reaches the dynamic section only after it. With the
        code in a PT_LOAD of its own (-z separate-code) the strings are in the first one, which `head`
        keeps, and the read-only PT_LOAD after the code is .rodata: nothing is kept ahead."""
        layout = self._layout(first) if first[:4] == b"\x7fELF" else None
        if layout is None:
            return []
        seg, load0 = layout
        if seg.dynamic is None or load0 is None or not load0[3] & PF_X:
            return []
        out, budget = [], ELF_HEAD_MAX
        for _, offset, filesz, flags in sorted(seg.loads, key=lambda ld: ld[1]):
            if offset > 0 and not flags & (PF_X | PF_W) and offset < seg.dynamic[0] and budget > 0:
                take = min(filesz, budget)
                out.append((offset, offset + take))
                budget -= take
        return out

    def read(self, path: str, size: int, read: Callable[[int, int], bytes]) -> None:
        head = read(0, 64)
        if head[:4] == b"\x7fELF":
            with contextlib.suppress(ElfReadError):  # the same reads give the same error when the scan probes
                read_elf(read, head)
