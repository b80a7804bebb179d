"""Layers streamed once (gzip, zstd, plain): the merge equals the seekable one, the keep policy keeps exactly
what the ELF reader reads, and corrupt or truncated streams give their own error."""

from __future__ import annotations

import glob
import gzip
import io
import os
import tarfile
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldfix.image import tarstream
from ldfix.image.decode import Decoder, LayerStreamError
from ldfix.image.layers import MergedTree, add_tar_layer, member_path
from ldfix.image.pathwalk import normalize
from ldfix.image.stream import NotKept, ScanAll, add_stream_layer
from ldfix.image.zstd import decompressor
from ldfix.loader.elf import ElfReadError, read_elf
from ldfix.loader.keep import ScanKeep

HOST_LIBS = sorted(p for p in glob.glob("/usr/lib/x86_64-linux-gnu/lib*.so.*") if os.path.isfile(p)
                   and not os.path.islink(p) and os.path.getsize(p) < 4 << 20)[:40]
BIG_STRINGS = sorted(glob.glob("/usr/lib/x86_64-linux-gnu/libLLVM-*.so.1"))[:1]  # strings over 1 MiB, early


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zstd(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
    return bytes(zstd.compress(data))


def _reader(data: bytes) -> Callable[[int], bytes]:
    fh = io.BytesIO(data)
    return fh.read


def _stream(blob: bytes, policy: object) -> tuple[MergedTree, list[str]]:
    tree = MergedTree()
    short = add_stream_layer(tree, Decoder(_reader(blob)), policy)  # type: ignore[arg-type]
    return tree, short


FILES = {"etc/ld.so.conf": b"/opt/lib\n", "usr/share/doc/big.txt": os.urandom(3 << 20),
         "opt/lib/libfake.so.1": b"INPUT(-lz)\n" + bytes(100)}

def _bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


FILES.update({"usr/lib/" + os.path.basename(p): _bytes(p) for p in HOST_LIBS})


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress, lambda b: gzip.compress(b[:5000]) + gzip.compress(b[5000:]),
                                  _zstd], ids=["plain", "gzip", "gzip-2-members", "zstd"])
def test_every_compression_streams_to_the_same_tree_as_the_seekable_reader(pack: Callable[[bytes], bytes]) -> None:
    raw = _layer(FILES)
    seekable = MergedTree()
    add_tar_layer(seekable, io.BytesIO(raw), 0, len(raw))
    streamed, short = _stream(pack(raw), ScanAll())
    assert not short
    assert set(streamed.nodes) == set(seekable.nodes)
    for path, node in seekable.nodes.items():
        if node.size:
            assert streamed.read(path, 0, node.size) == seekable.read(path, 0, node.size), path


def test_the_keep_policy_keeps_what_the_elf_reader_reads_and_nothing_else() -> None:
    raw = _layer({**FILES, **{"usr/lib/" + os.path.basename(p): _bytes(p) for p in BIG_STRINGS}})
    tree, short = _stream(raw, ScanKeep())
    assert not short and HOST_LIBS
    for p in HOST_LIBS + BIG_STRINGS:
        data = _bytes(p)
        path = "/usr/lib/" + os.path.basename(p)

        def full(offset: int, size: int, data: bytes = data) -> bytes:
            return data[offset:offset + size]

        def kept(offset: int, size: int, path: str = path) -> bytes:
            return tree.read(path, offset, size)

        try:
            want = read_elf(full)
        except ElfReadError:
            continue
        assert read_elf(kept) == want, p
        kept_bytes = sum(len(d) for d in tree.nodes[path].loc.data)  # type: ignore[union-attr]
        assert kept_bytes < 64 << 10, (p, kept_bytes)
    assert tree.read("/etc/ld.so.conf", 0, 100) == b"/opt/lib\n"
    assert tree.read("/opt/lib/libfake.so.1", 0, 11) == b"INPUT(-lz)\n"
    with pytest.raises(NotKept):
        tree.read("/usr/share/doc/big.txt", 0, 10)  # never read by a scan: not kept, and says so


class _FarRead:
    """A policy that wants bytes near the end of a large file, as patchelf'd libraries place their strings."""

    def whole(self, path: str, size: int) -> bool:
        return False

    def head(self, path: str, size: int, first: bytes) -> int:
        return 16

    def ahead(self, path: str, size: int, first: bytes) -> list[tuple[int, int]]:
        return []

    def read(self, path: str, size: int, read: Callable[[int, int], bytes]) -> None:
        read(0, 16)
        if size > 100:
            read(size - 100, 50)


def test_a_read_further_on_moves_the_stream_there_and_keeps_only_that() -> None:
    big = os.urandom(5 << 20)
    tree, short = _stream(gzip.compress(_layer({"a.so": big, "b": b"after"})), _FarRead())
    assert not short
    assert tree.read("/a.so", len(big) - 100, 50) == big[-100:-50]
    assert tree.read("/a.so", 0, 16) == big[:16]
    with pytest.raises(NotKept):
        tree.read("/a.so", 1 << 20, 10)
    assert "/b" in tree.nodes


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_gzip_is_a_stream_error(damage: str) -> None:
    blob = gzip.compress(_layer(FILES))
    blob = blob[:len(blob) // 2] if damage == "truncated" else blob[:200] + bytes(500) + blob[700:]
    with pytest.raises((LayerStreamError, tarstream.TarError)):
        _stream(blob, ScanKeep())


def test_zstd_decompressor_is_available() -> None:
    assert decompressor() is not None


@given(st.text(alphabet="a./", max_size=12))
def test_member_path_fast_path_agrees_with_the_full_normalization(name: str) -> None:
    assert member_path(name) == normalize("/" + name)



def _elf_laid_out(code: int, strings_first: bool, gap: int, load0_flags: int = 5) -> bytes:
    """A 64-bit shared object with the layouts one pass over a stream must still read: `strings_first`: a
    PT_LOAD of `code` bytes of code first, then a read-only PT_LOAD holding the dynamic strings, then the
    dynamic section (as some mypyc builds are); else the dynamic section first and the strings `gap` bytes
    after it, DT_RPATH's string last but its tag first (as patchelf leaves them)."""
    import struct

    needed = ["libgfortran-040039e1.so.5", "libm.so.6", "libc.so.6"]
    strtab = b"\0" + b"".join(n.encode() + b"\0" for n in needed) + b"libx.so\0" + b"$ORIGIN/../lib\0"
    offsets = [1 + sum(len(n) + 1 for n in needed[:i]) for i in range(len(needed))]
    soname_at = 1 + sum(len(n) + 1 for n in needed)
    rpath_at = soname_at + len("libx.so") + 1
    phdrs = 4
    if strings_first:
        str_off, dyn_off = code, code + 4096
    else:
        dyn_off, str_off = code, code + 4096 + gap
    dyn = [(5, str_off), (10, len(strtab)), (15, rpath_at), *((1, o) for o in offsets), (14, soname_at), (0, 0)]
    raw_dyn = b"".join(struct.pack("<qQ", t, v) for t, v in dyn)

    def ph(kind: int, flags: int, off: int, size: int) -> bytes:
        return struct.pack("<IIQQQQQQ", kind, flags, off, off, off, size, size, 4096)

    head = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 3, 62, 1, 0, 64, 0, 0, 64, 56,
                       phdrs, 64, 0, 0)
    if strings_first:
        loads = [ph(1, load0_flags, 0, code), ph(1, 4, str_off, len(strtab)), ph(1, 6, dyn_off, len(raw_dyn))]
    else:
        loads = [ph(1, 5, 0, code), ph(1, 6, dyn_off, len(raw_dyn)), ph(1, 4, str_off, len(strtab))]
    out = bytearray(head + b"".join(loads) + ph(2, 6, dyn_off, len(raw_dyn)))
    end = max(str_off + len(strtab), dyn_off + len(raw_dyn))
    out.extend(bytes(end - len(out)))
    out[str_off:str_off + len(strtab)] = strtab
    out[dyn_off:dyn_off + len(raw_dyn)] = raw_dyn
    return bytes(out)


@pytest.mark.parametrize(("code", "strings_first", "gap"), [(9 << 20, True, 0), (9 << 20, False, 2 << 20),
                                                            (12 << 20, False, 300)])
def test_strings_behind_the_code_or_out_of_tag_order_are_kept_in_one_pass(code: int, strings_first: bool,
                                                                          gap: int) -> None:
    """The stream reaches the dynamic section only after the strings a code-first layout puts before it, and
    a patchelf'd object's strings lie after it in another order than their tags: one pass keeps what the ELF
    reader reads of both, so the tree answers it without a partial-file note."""
    data = _elf_laid_out(code, strings_first, gap)
    want = read_elf(lambda offset, n: data[offset:offset + n])
    assert want.soname == "libx.so" and want.rpath == "$ORIGIN/../lib" and len(want.needed) == 3
    tree, short = _stream(gzip.compress(_layer({"opt/lib/libx.so": data}), 1), ScanKeep())
    assert short == []
    assert read_elf(lambda offset, n: tree.read("/opt/lib/libx.so", offset, n)) == want


@given(st.binary(min_size=1, max_size=12) | st.text(alphabet="01234567 \0_+-\t", min_size=1, max_size=12).map(str.encode))
def test_the_fast_octal_field_parse_agrees_with_the_full_one(field: bytes) -> None:
    def parse(fn: Callable[[bytes], int]) -> int | str:
        try:
            return fn(field)
        except tarstream.TarError:
            return "error"

    assert parse(tarstream._num) == parse(tarstream._num_slow)


def test_only_a_code_first_layout_keeps_a_read_only_segment_ahead() -> None:
    """The read-only PT_LOAD after the code is kept ahead only where the first PT_LOAD holds the code; after
    a non-executable first PT_LOAD (-z separate-code, where the strings are) it is .rodata, not kept."""
    code_first = _elf_laid_out(9 << 20, True, 0)
    separate = _elf_laid_out(9 << 20, True, 0, load0_flags=4)
    keep = ScanKeep()
    assert keep.ahead("/a.so", len(code_first), code_first[:1 << 16]) == [(9 << 20, (9 << 20) + 70)]  # the strings' segment
    assert keep.ahead("/a.so", len(separate), separate[:1 << 16]) == []


@pytest.mark.parametrize("damage", ["none", "truncated", "corrupt"])
def test_a_decoder_reading_ahead_gives_the_same_tree_and_errors_and_stops_its_thread(damage: str) -> None:
    """PrefetchingDecoder inflates in a thread of its own: the merge it feeds is the same as the plain
    decoder's, a damaged stream raises in the reader, and when the merge ends (either way) the thread is gone
    and the switch interval is back."""
    import sys
    import threading

    from ldfix.image.decode import PrefetchingDecoder

    blob = gzip.compress(_layer(FILES))
    if damage == "truncated":
        blob = blob[:len(blob) // 2]
    elif damage == "corrupt":
        blob = blob[:200] + bytes(500) + blob[700:]
    before = sys.getswitchinterval()
    outcomes = []
    for make in (Decoder, PrefetchingDecoder):
        tree = MergedTree()
        try:
            short = add_stream_layer(tree, make(_reader(blob)), ScanKeep())
            outcomes.append(("ok", short, {p: tree.lstat(p) for p in tree.nodes}))
        except (LayerStreamError, tarstream.TarError) as err:
            outcomes.append(("error", type(err).__name__, None))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0][0] == "ok") == (damage == "none")
    assert not [t for t in threading.enumerate() if t.name == "ldfix-inflate"]
    assert sys.getswitchinterval() == before


class _CountingFS:
    """An ImageFS of one file whose reads are counted; `kept`: only that many leading bytes can be read (a
    streamed layer's file kept in part), a read past them raises NotKept."""

    def __init__(self, data: bytes, kept: int | None) -> None:
        self.data, self.kept, self.reads = data, kept, 0

    def read(self, path: str, offset: int, size: int) -> bytes:
        self.reads += 1
        if self.kept is not None and offset + min(size, len(self.data) - offset) > self.kept:
            if offset >= self.kept:
                raise NotKept(offset, size)
            return self.data[offset:self.kept]  # as Sparse.read: the kept run that holds `offset`
        return self.data[offset:offset + size]


@given(st.binary(max_size=9000), st.one_of(st.none(), st.integers(0, 9000)),
       st.lists(st.tuples(st.integers(-2, 9500), st.integers(-1, 5000)), max_size=8))
def test_file_reader_head_gives_what_direct_reads_give(data: bytes, kept: int | None,
                                                       reads: list[tuple[int, int]]) -> None:
    """Walker.reader serves reads inside the file's first bytes from one read of them: every read returns
    what a direct read returns, or raises where it raises, whatever the file's length and what is kept."""
    from ldfix.image.pathwalk import Walker

    fs = _CountingFS(data, kept)
    read = Walker(fs).reader("/f")  # type: ignore[arg-type]
    direct = _CountingFS(data, kept)
    for offset, size in [(0, 64), *reads]:
        try:
            want: bytes | type[NotKept] = direct.read("/f", offset, size) if offset >= 0 and size > 0 else b""
        except NotKept:
            want = NotKept
        if want is NotKept:
            with pytest.raises(NotKept):
                read(offset, size)
        else:
            assert read(offset, size) == want


def test_file_reader_reads_the_elf_head_once() -> None:
    """The ELF reads of a small library's header, program headers and dynamic strings are one read."""
    from ldfix.image.pathwalk import Walker

    data = bytes(range(256)) * 16
    fs = _CountingFS(data, None)
    read = Walker(fs).reader("/f")  # type: ignore[arg-type]
    assert [read(0, 64), read(64, 56 * 7), read(1000, 256)] == [data[:64], data[64:456], data[1000:1256]]
    assert fs.reads == 1
    assert read(4000, 200) == data[4000:4200] and fs.reads == 2  # past the head: the file itself


@given(st.one_of(st.binary(min_size=512, max_size=512), st.sampled_from([b"\xff" * 512, bytes(512)])))
def test_header_byte_sum_is_the_plain_sum(block: bytes) -> None:
    """The checksum's byte sum through adler32 halves is the plain sum of the 512 bytes, all-0xff included
    (where one adler32 over the whole block would wrap modulo 65521)."""
    assert tarstream._byte_sum(block) == sum(block)
