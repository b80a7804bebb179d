"""Image archives read without running anything: OCI whiteouts, hard links, hostile member names, and
random bytes never escape as a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldfix.errors import ImageAccessError
from ldfix.image.archive import open_archive
from ldfix.image.base import Kind
from ldfix.image.pathwalk import Walker


def _tar(members: list[tuple[str, bytes | str | None, str]]) -> bytes:
    """(name, data | link target | None for a directory, kind: file|dir|sym|hard) -> tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
                info.linkname = str(data)
                tar.addfile(info)
            else:
                raw = data if isinstance(data, bytes) else b""
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _save(path: Path, layers: list[bytes], env: list[str]) -> Path:
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": env}}).encode()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"],
                            "Layers": [f"l{i}.tar" for i in range(len(layers))]}]).encode()
    members: list[tuple[str, bytes | str | None, str]] = [("c.json", config, "file"), ("manifest.json", manifest, "file")]
    members += [(f"l{i}.tar", layer, "file") for i, layer in enumerate(layers)]
    path.write_bytes(_tar(members))
    return path


def test_layers_stack_with_whiteouts_and_links(tmp_path: Path) -> None:
    lower = _tar([("usr/", None, "dir"), ("usr/lib/", None, "dir"), ("usr/lib/a.so", b"AAAA", "file"),
                  ("usr/lib/b.so", b"BBBB", "file"), ("opt/old/x", b"x", "file")])
    upper = _tar([("usr/lib/.wh.a.so", b"", "file"), ("usr/lib/c.so", "b.so", "sym"),
                  ("usr/lib/d.so", "usr/lib/b.so", "hard"), ("opt/old/.wh..wh..opq", b"", "file"),
                  ("opt/old/y", b"y", "file"), ("../../etc/escape", b"no", "file")])
    view = open_archive("docker-archive", str(_save(tmp_path / "i.tar", [lower, upper], ["LD_LIBRARY_PATH=/x"])))
    fs = view.fs
    assert fs.lstat("/usr/lib/a.so") is None  # whited out
    assert fs.read("/usr/lib/b.so", 0, 10) == b"BBBB"
    assert fs.lstat("/usr/lib/c.so").kind is Kind.LINK  # type: ignore[union-attr]
    assert fs.read("/usr/lib/d.so", 1, 2) == b"BB"  # a hard link reads its target's bytes
    assert sorted(fs.listdir("/opt/old")) == ["y"]  # the opaque directory hides the lower x
    assert fs.lstat("/etc/escape") is not None and fs.lstat("/../etc/escape") is None  # names stay inside
    assert Walker(fs).stat("/usr/lib/c.so")[0] == "/usr/lib/b.so"  # type: ignore[index]
    assert view.config.env == {"LD_LIBRARY_PATH": "/x"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes_are_a_clean_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(data)
    for transport in ("docker-archive", "oci-archive"):
        with contextlib.suppress(ImageAccessError):  # any other exception fails the test
            open_archive(transport, str(path))


MANIFEST = b'[{"Config":"c.json","Layers":["l.tar"]}]'
MALFORMED = {
    "manifest not json": [("manifest.json", b"{", "file")],
    "manifest not a list": [("manifest.json", b'{"a":1}', "file")],
    "layers not a list": [("manifest.json", b'[{"Config":"c.json","Layers":5}]', "file"), ("c.json", b"{}", "file")],
    "config missing": [("manifest.json", b'[{"Config":"c.json","Layers":[]}]', "file")],
    "config not an object": [("manifest.json", b'[{"Config":"c.json","Layers":[]}]', "file"), ("c.json", b"[1]", "file")],
    "env not a list": [("manifest.json", b'[{"Config":"c.json","Layers":[]}]', "file"),
                       ("c.json", b'{"config":{"Env":"A=1"}}', "file")],
    "layer missing": [("manifest.json", MANIFEST, "file"), ("c.json", b"{}", "file")],
    "layer not a tar": [("manifest.json", MANIFEST, "file"), ("c.json", b"{}", "file"), ("l.tar", b"junk" * 300, "file")],
    "gzip layer corrupt": [("manifest.json", MANIFEST, "file"), ("c.json", b"{}", "file"),
                           ("l.tar", b"\x1f\x8b" + b"x" * 100, "file")],
    "index digest missing": [("index.json", b'{"manifests":[{"digest":"sha256:00"}]}', "file")],
}


def test_malformed_archives_are_clean_errors(tmp_path: Path) -> None:
    for name, members in MALFORMED.items():
        path = tmp_path / f"{name.replace(' ', '-')}.tar"
        path.write_bytes(_tar(members))
        try:
            open_archive("docker-archive", str(path))
        except ImageAccessError as err:
            assert err.message and err.hint, name
        else:
            raise AssertionError(f"{name}: accepted")
    assert not list(Path(tempfile.gettempdir()).glob("ldfix-layer-*")), "a failed open leaves no inflated layer"


def test_an_archive_snapshot_gives_the_same_tree_and_a_rewritten_archive_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker save archive of plain layer tars is kept as a snapshot (image/snapshot.py) keyed by the file's
    identity: the next open reads the same files without indexing the layers; a file written again (other
    size or mtime) is another image."""
    from ldfix.image.archive import open_archive

    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path / "cache"))
    lower = _tar([("usr/", None, "dir"), ("usr/lib/", None, "dir"), ("usr/lib/a.so", b"AAAA", "file"),
                  ("usr/lib/l.so", "a.so", "sym")])
    upper = _tar([("usr/lib/.wh.a.so", b"", "file"), ("usr/lib/b.so", b"BB", "file")])
    path = _save(tmp_path / "i.tar", [lower, upper], ["A=1"])

    def files(view: object) -> dict[str, object]:
        fs = view.fs  # type: ignore[attr-defined]
        return {p: (fs.lstat(p), fs.read(p, 0, 9) if fs.lstat(p).kind.name == "FILE" else None)
                for p in ("/usr/lib/b.so", "/usr/lib/l.so") if fs.lstat(p) is not None} | {
            "gone": fs.lstat("/usr/lib/a.so"), "list": sorted(fs.listdir("/usr/lib"))}

    from ldfix.loader.keep import ScanKeep

    plain = open_archive("docker-archive", str(path))
    assert plain.snapshot_key is None  # no keep policy: every byte would be kept, so nothing is
    plain.close()
    first = open_archive("docker-archive", str(path), ScanKeep())
    assert first.snapshot_key is not None and (tmp_path / "cache/snapshots").is_dir()
    want = files(first)
    first.close()
    again = open_archive("docker-archive", str(path), ScanKeep())
    assert again.snapshot_key == first.snapshot_key and files(again) == want
    again.close()
    _save(path, [lower, _tar([("usr/lib/b.so", b"BBBBBB", "file")])], ["A=1"])
    other = open_archive("docker-archive", str(path), ScanKeep())
    assert other.snapshot_key != first.snapshot_key and other.fs.read("/usr/lib/b.so", 0, 9) == b"BBBBBB"
    other.close()
    monkeypatch.setenv("LDFIX_NO_CACHE", "1")
    off = open_archive("docker-archive", str(path), ScanKeep())
    assert off.snapshot_key is None
    off.close()


def test_a_gzip_oci_layout_snapshot_keeps_what_the_stream_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """A layout with gzip layers is streamed once; its snapshot keeps the byte ranges the scan's keep policy
    kept, so the next open answers the same reads without inflating anything."""
    from ldfix.image.archive import open_archive
    from ldfix.loader.keep import ScanKeep
    from tests.images import oci_layout_from_save

    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path / "cache"))
    layer = _tar([("etc/", None, "dir"), ("etc/ld.so.conf", b"/opt/lib\n", "file"), ("opt/", None, "dir"),
                  ("opt/lib/", None, "dir"), ("opt/lib/libx.so.1", b"\x7fELF" + bytes(60), "file"),
                  ("opt/lib/libx.so", "libx.so.1", "sym")])
    layout = oci_layout_from_save(_save(tmp_path / "i.tar", [layer], ["A=1"]), tmp_path / "oci")

    def seen(view: object) -> tuple[object, ...]:
        fs = view.fs  # type: ignore[attr-defined]
        return (fs.read("/etc/ld.so.conf", 0, 99), fs.read("/opt/lib/libx.so.1", 0, 4), fs.readlink("/opt/lib/libx.so"),
                sorted(fs.listdir("/opt/lib")), fs.lstat("/opt/lib/libx.so.1"))

    first = open_archive("oci-dir", str(layout), ScanKeep())
    want = seen(first)
    first.close()
    assert first.snapshot_key is not None and want[0] == b"/opt/lib\n"
    again = open_archive("oci-dir", str(layout), ScanKeep())
    assert again.snapshot_key == first.snapshot_key and seen(again) == want
    again.close()


def test_a_framework_read_through_a_gzip_layout_is_reported_as_from_its_files(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What a scan reads of a framework install (package METADATA, torch/version.py, the ELF objects) is kept
    by the one pass over a gzip layer: the layout's report has the framework entry and findings the same
    files give in memory, and no file it reads is missing."""
    from ldfix import api
    from ldfix.diagnose.scan import ScanOptions
    from ldfix.loader.keep import ScanKeep
    from tests.images import oci_layout_from_save
    from tests.unit.test_frameworks import torch
    from tests.unit.test_rules import image

    monkeypatch.setenv("LDFIX_NO_CACHE", "1")
    memory = image(torch())
    members: list[tuple[str, bytes | str | None, str]] = []
    for path in sorted(memory.fs.nodes):  # type: ignore[attr-defined]
        node = memory.fs.nodes[path]  # type: ignore[attr-defined]
        if path != "/":
            members.append((path.lstrip("/") + ("/" if node.kind is Kind.DIR else ""),
                            None if node.kind is Kind.DIR else node.loc, node.kind.name.lower()))
    layout = oci_layout_from_save(_save(tmp_path / "i.tar", [_tar(members)], []), tmp_path / "oci")
    view = open_archive("oci-dir", str(layout), ScanKeep())
    try:
        streamed, _ = api.scan_view(view, None, ScanOptions())
    finally:
        view.close()
    want, _ = api.scan_view(memory, None, ScanOptions())
    assert [n for n in streamed.notes if "not kept" in n or "unreadable" in n] == []
    assert streamed.frameworks == want.frameworks and streamed.frameworks[0]["framework"] == "torch"
    assert streamed.findings == want.findings


def _stacked_layers() -> list[bytes]:
    """Four layers whose order matters: overwrites, a whiteout, an opaque directory, a hard link to a lower
    layer's file, a directory replacing a file; large enough that each layer's inflate takes a while."""
    filler = [(f"opt/many/f{i}", bytes([i % 251]) * (i % 700), "file") for i in range(400)]
    return [
        _tar([("usr/", None, "dir"), ("usr/lib/", None, "dir"), ("usr/lib/a.so", b"A1", "file"),
              ("usr/lib/b.so", b"B1", "file"), ("opt/old/x", b"x", "file"), ("srv/thing", b"file", "file"),
              *filler]),
        _tar([("usr/lib/a.so", b"A2", "file"), ("usr/lib/.wh.b.so", b"", "file"), ("opt/old/.wh..wh..opq", b"", "file"),
              ("opt/old/y", b"y", "file"), ("srv/thing/", None, "dir"), ("srv/thing/in", b"in", "file")]),
        _tar([("usr/lib/b.so", b"B3", "file"), ("usr/lib/h.so", "usr/lib/a.so", "hard"), *filler[:50]]),
        _tar([("usr/lib/a.so", b"A4", "file"), ("opt/many/.wh.f7", b"", "file")]),
    ]


def test_gzip_layers_read_at_once_merge_as_one_after_another(tmp_path: Path) -> None:
    """Compressed layers are read several at a time in threads and merged in order: every entry, its kind,
    size, link target and bytes, is what the same layers give uncompressed, read one after the other; and in
    an oci-archive the layers' reads share one file."""
    import tarfile as tarmod

    from ldfix.image.stream import ScanAll
    from tests.images import oci_layout_from_save
    from tests.unit.test_snapshot import _everything

    save = _save(tmp_path / "i.tar", _stacked_layers(), ["A=1"])
    plain = open_archive("docker-archive", str(save))
    want = _everything(plain.fs)  # type: ignore[arg-type]
    assert want["/usr/lib/h.so"][2] == b"A2" and "/usr/lib/b.so" in want and "/opt/old/x" not in want
    layout = oci_layout_from_save(save, tmp_path / "oci")
    with tarmod.open(tmp_path / "oci.tar", "w") as tar:
        for item in sorted(layout.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(layout)), recursive=False)
    for transport, path in (("oci-dir", layout), ("oci-archive", tmp_path / "oci.tar")):
        view = open_archive(transport, str(path), ScanAll())
        assert _everything(view.fs) == want, transport  # type: ignore[arg-type]
        view.close()
    plain.close()


def test_a_corrupt_gzip_layer_among_others_is_one_error_and_stops_the_rest(tmp_path: Path) -> None:
    """The first bad layer in order is the error, whatever the threads finished first; no layer thread or
    inflating thread is left behind."""
    import threading

    from ldfix.image.stream import ScanAll
    from tests.images import oci_layout_from_save

    layout = oci_layout_from_save(_save(tmp_path / "i.tar", _stacked_layers(), ["A=1"]), tmp_path / "oci")
    manifest_desc = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = json.loads((layout / "blobs/sha256" / manifest_desc["digest"][7:]).read_bytes())
    blob = layout / "blobs/sha256" / manifest["layers"][1]["digest"][7:]
    data = blob.read_bytes()
    blob.write_bytes(data[:len(data) // 2])  # truncated: the gzip stream ends early
    with pytest.raises(ImageAccessError) as caught:
        open_archive("oci-dir", str(layout), ScanAll())
    assert "not a readable tar" in caught.value.message and "truncated" in caught.value.message
    assert not [t.name for t in threading.enumerate() if t.name.startswith(("ldfix-layer", "ldfix-inflate"))]
