"""A small tar header reader: ustar and old-GNU headers, GNU long names and link names (`L`, `K`), pax
extended headers (`x`, and global `g` as far as path and size go). Member data is skipped by seeking on a
file and by reading on a stream, so indexing a layer costs its headers, not its bytes.

Hostile input gives a `TarError`, never an exception of another kind: a bad checksum, a size that is not a
number, a header past the end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple
from zlib import adler32

BLOCK = 512
_ZERO_BLOCK, _ZERO_PREFIX = bytes(BLOCK), bytes(155)
REG, LNK, SYM, DIR = "0", "1", "2", "5"
_REG_ALIASES = ("\0", "7")


class TarError(Exception):
    pass


class Member(NamedTuple):
    """One tar member (a tuple: a layer index makes one per file)."""

    name: str
    type: str  # REG, LNK, SYM, DIR, or another one-character type (devices, fifos)
    size: int
    mode: int
    linkname: str
    offset: int  # where the data starts, from the start of the tar
    devmajor: int = 0
    devminor: int = 0


def _num(field: bytes) -> int:
    if field and not field[0] & 0x80:
        try:  # the common case, octal digits up to the first NUL
            return int(field.split(b"\0", 1)[0] or b"0", 8)
        except ValueError:
            pass
    return _num_slow(field)


def _num_slow(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large sizes
        value = int.from_bytes(field[1:], "big")
        return value if not field[0] & 0x40 else -value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError(f"bad number field {field!r}") from None


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _byte_sum(block: bytes) -> int:
    """The sum of a 512-byte block's bytes, as the tar checksum counts them: adler32's low half started at 0
    is the sum of the bytes modulo 65521, exact for each 256-byte half (at most 256 * 255 = 65280), and
    about six times faster than `sum` over the block's bytes (69,000 headers of the large bench image)."""
    return (adler32(block[:256], 0) & 0xFFFF) + (adler32(block[256:], 0) & 0xFFFF)


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156]
    total = _byte_sum(header) - sum(stored) + 8 * 32  # the checksum field counts as eight spaces
    try:
        return _num(stored) == total
    except TarError:
        return False


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError("bad pax record length") from None
        if length <= 0 or pos + length > len(data):
            raise TarError("bad pax record length")
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class Reader:
    """Reads the blocks of a tar: `read(n)` returns up to n bytes; `skip(n)` moves forward n bytes."""

    def __init__(self, read: Callable[[int], bytes], skip: Callable[[int], None] | None = None) -> None:
        self._read = read
        self._skip = skip
        self.pos = 0

    def read(self, n: int) -> bytes:
        data = self._read(n)
        self.pos += len(data)
        return data

    def exact(self, n: int) -> bytes:
        data = self.read(n)
        if len(data) != n:
            raise TarError("the tar ends in the middle of a member")
        return data

    def skip(self, n: int) -> None:
        if n <= 0:
            return
        if self._skip is not None:
            self._skip(n)
            self.pos += n
            return
        while n > 0:
            chunk = self.read(min(n, 1 << 20))
            if not chunk:
                raise TarError("the tar ends in the middle of a member")
            n -= len(chunk)


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


def members(r: Reader, on_data: Callable[[Member, Reader], int] | None = None) -> Iterator[Member]:
    """Every member in order, with long names and pax headers applied. After a member is yielded its data is
    skipped; `on_data(member, reader)` may consume some of it first and return how many bytes it read."""
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    global_pax: dict[str, str] = {}
    while True:
        header = r.read(BLOCK)
        if len(header) < BLOCK or header == _ZERO_BLOCK:
            return  # end of archive (two zero blocks, or a short end that Docker accepts too)
        if not _checksum_ok(header):
            raise TarError(f"bad tar header checksum at byte {r.pos - BLOCK}")
        kind = chr(header[156]) if header[156] else "0"
        size = _num(header[124:136])
        if size < 0:
            raise TarError("negative member size")
        if kind in ("L", "K", "x", "g"):
            if size > 1 << 20:
                raise TarError("an extended header over 1 MiB")
            data = r.exact(size)
            r.skip(_padded(size) - size)
            if kind == "L":
                long_name = _str(data)
            elif kind == "K":
                long_link = _str(data)
            elif kind == "x":
                pax.update(_pax(data))
            else:
                global_pax.update(_pax(data))
            continue
        name = _str(header[0:100])
        if header[257:262] == b"ustar" and header[345:500] != _ZERO_PREFIX:
            name = _str(header[345:500]) + "/" + name
        if pax or global_pax:
            attrs = {**global_pax, **pax}
            name = long_name or attrs.get("path") or name
            linkname = long_link or attrs.get("linkpath") or _str(header[157:257])
            if "size" in attrs:
                try:
                    size = int(attrs["size"])
                except ValueError:
                    raise TarError("bad pax size") from None
            pax = {}
        else:  # the common case: no pax header applies
            name = long_name or name
            linkname = long_link or (_str(header[157:257]) if header[157] else "")
        long_name = long_link = None
        if kind in _REG_ALIASES:
            kind = REG
        device = kind in ("3", "4")  # device numbers only matter (and are only read) for device nodes
        m = Member(name, kind, size if kind == REG else 0, _num(header[100:108]) & 0o7777, linkname, r.pos,
                   _num(header[329:337]) if device else 0, _num(header[337:345]) if device else 0)
        yield m
        used = on_data(m, r) if on_data is not None and kind == REG else 0
        r.skip(_padded(size) - used)


WINDOW = 1 << 16  # bytes read at a time by the header walk of a seekable file


class _Window:
    """`read`/`skip` over [start, end) of a file descriptor for the header walk: one pread of WINDOW bytes
    serves the headers of the small members that lie in it, and a skip past the window costs no read at all
    (a header after a large member is one pread), instead of a seek and a buffered read per member."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd = fd
        self.pos, self.end = start, end
        self.buf, self.at = b"", start  # the window and where it starts in the file

    def read(self, n: int) -> bytes:
        n = max(0, min(n, self.end - self.pos))
        off = self.pos - self.at
        if off < 0 or off + n > len(self.buf):
            self.buf, self.at, off = os.pread(self.fd, max(n, min(WINDOW, self.end - self.pos)), self.pos), \
                self.pos, 0
        data = self.buf[off:off + n]
        self.pos += len(data)
        return data

    def skip(self, n: int) -> None:
        self.pos += n


def file_reader(fh: IO[bytes], start: int, end: int) -> Reader:
    """A Reader over [start, end) of a seekable file (offsets from `start`): through a pread window where the
    file has a descriptor, else by seeking and reading (file objects in memory)."""
    try:
        fd = fh.fileno()
    except (OSError, AttributeError, ValueError):
        fh.seek(start)

        def read(n: int) -> bytes:
            return fh.read(max(0, min(n, end - fh.tell())))

        def skip(n: int) -> None:
            fh.seek(n, os.SEEK_CUR)

        return Reader(read, skip)
    window = _Window(fd, start, end)
    return Reader(window.read, window.skip)
