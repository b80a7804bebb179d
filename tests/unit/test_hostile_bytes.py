"""Every reader survives hostile bytes: random and mutated input gives its own error type or a result,
never another exception."""

from __future__ import annotations

import contextlib
import io
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldfix.dockerfile.parser import parse
from ldfix.image import tarstream
from ldfix.image.layers import MergedTree, add_tar_layer
from ldfix.image.memory import MemoryFS
from ldfix.image.pathwalk import Walker
from ldfix.loader.elf import probe_any
from ldfix.loader.elfwrite import build_shared_object
from ldfix.loader.ldcache import CacheFormatError, parse_cache
from ldfix.loader.ldconf import parse_conf

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ELF = build_shared_object("libx.so.1", ("liby.so.2",), runpath="$ORIGIN")


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=20)


@SETTINGS
@given(st.binary(max_size=4096) | st.builds(_mutate, st.just(ELF), edits))
def test_elf_reader(data: bytes) -> None:
    result = probe_any(lambda off, size: data[off:off + size])
    assert result.info is not None or result.error


@SETTINGS
@given(st.binary(max_size=4096) | st.builds(_mutate, st.just(b"glibc-ld.so.cache1.1" + bytes(200)), edits))
def test_ld_so_cache_parser(data: bytes) -> None:
    with contextlib.suppress(CacheFormatError):
        parse_cache(data)


@SETTINGS
@given(st.binary(max_size=600), st.binary(max_size=300))
def test_ld_so_conf_reader(main: bytes, included: bytes) -> None:
    fs = MemoryFS()
    fs.add_file("/etc/ld.so.conf", main + b"\ninclude /etc/ld.so.conf.d/*.conf\ninclude /etc/ld.so.conf\n")
    fs.add_file("/etc/ld.so.conf.d/a.conf", included + b"\0\xff\xfe\ninclude /etc/ld.so.conf.d/*.conf\n")
    parse_conf(Walker(fs))  # include loops, NUL bytes and invalid UTF-8 end in a result


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("usr/lib/" + "x" * 120 + ".so.1", ELF), ("etc/ld.so.conf", b"/opt\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("usr/lib/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc"
        tar.addfile(link)
    return buf.getvalue()


@SETTINGS
@given(st.binary(max_size=3000) | st.builds(_mutate, st.just(_tar()), edits))
def test_tar_reader(data: bytes) -> None:
    tree = MergedTree()
    try:
        add_tar_layer(tree, io.BytesIO(data), 0, len(data))
    except tarstream.TarError:
        return
    for path in list(tree.nodes):
        assert path.startswith("/") and "/../" not in path + "/"  # `..` members stay inside the root


@SETTINGS
@given(st.text(max_size=2000) | st.binary(max_size=2000).map(lambda b: b.decode("utf-8", "replace")))
def test_dockerfile_reader(text: str) -> None:
    parse(text.encode("utf-8", "surrogatepass"))
