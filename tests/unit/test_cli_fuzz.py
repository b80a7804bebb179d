"""The whole command on hostile images: mutated `docker save` archives and root filesystems whose ELF files,
ld.so.cache and ld.so.conf are random bytes. `ldfix scan` gives a report (exit 0 or 1) or one error line
(exit 3); never a traceback."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ldfix.cli.main import app
from ldfix.loader.elfwrite import build_shared_object
from tests.unit.test_archive import _save, _tar
from tests.unit.test_hostile_bytes import _mutate, edits

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ELF = build_shared_object("libcudart.so.12", ("libdl.so.2",), runpath="$ORIGIN")
LAYER = _tar([("etc/", None, "dir"), ("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n/opt/lib\n", "file"),
              ("etc/ld.so.cache", b"glibc-ld.so.cache1.1" + bytes(64), "file"),
              ("opt/", None, "dir"), ("opt/lib/", None, "dir"), ("opt/lib/libcudart.so.12", ELF, "file")])


def _scan(ref: str) -> None:
    result = CliRunner().invoke(app, ["scan", ref, "--static", "--format", "json"])
    assert result.exit_code in (0, 1, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 3:
        assert result.output.strip().startswith("ldfix: error:"), result.output


@SETTINGS
@given(edits)
def test_mutated_archive(changes: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _save(Path(tmp) / "i.tar", [LAYER], ["LD_LIBRARY_PATH=/opt/lib"])
        path.write_bytes(_mutate(path.read_bytes(), changes))
        _scan(f"docker-archive:{path}")


@SETTINGS
@given(st.builds(_mutate, st.just(ELF), edits), st.binary(max_size=512), st.binary(max_size=256))
def test_hostile_files_in_a_root(elf: bytes, cache: bytes, conf: bytes) -> None:
    with tempfile.TemporaryDirectory() as root:
        for d in ("etc/ld.so.conf.d", "opt/lib", "usr/lib"):
            os.makedirs(os.path.join(root, d))
        files = {"etc/ld.so.cache": b"glibc-ld.so.cache1.1" + cache, "etc/ld.so.conf": conf,
                 "etc/ld.so.conf.d/x.conf": conf[::-1], "opt/lib/libcudart.so.12": elf, "usr/lib/libcudnn.so.8": elf}
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as fh:
                fh.write(data)
        _scan(f"dir:{root}")


def test_a_dynamic_segment_offset_past_any_file_is_no_traceback(tmp_path: Path) -> None:
    """Found by the test above: a PT_DYNAMIC whose p_offset has its top bit set overflowed os.pread."""
    import struct

    data = bytearray(ELF)
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", data, at)[0] == 2:  # PT_DYNAMIC
            struct.pack_into("<Q", data, at + 8, 0x8000000000000138)
    for d in ("etc", "opt/lib"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_bytes(b"/opt/lib\n")
    (tmp_path / "opt/lib/libcudart.so.12").write_bytes(bytes(data))
    _scan(f"dir:{tmp_path}")
