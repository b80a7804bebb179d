"""Image snapshots: a kept tree reads as the tree it was merged from, and the folder stays bounded (the least
recently used snapshots go first)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldfix.image import snapshot
from ldfix.image.base import Kind
from ldfix.image.layers import MergedTree, TreeReads, add_tar_layer
from ldfix.image.overlay2 import merge_host_layers
from tests.unit.test_archive import _tar


def test_prune_removes_the_least_recently_used_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path))
    d = tmp_path / "snapshots"
    d.mkdir()
    for i, name in enumerate(("old.tree", "mid.tree", "new.tree")):
        (d / name).write_bytes(b"x" * 400_000)
        os.utime(d / name, (1000 + i, 1000 + i))
    assert snapshot._read(d / "old.tree") is not None  # reading it makes it the most recently used
    snapshot.prune(limit_mb=0.9)
    assert sorted(p.name for p in d.iterdir()) == ["new.tree", "old.tree"]
    snapshot.prune(limit_mb=0)
    assert list(d.iterdir()) == []


def _everything(fs: TreeReads, path: str = "/") -> dict[str, object]:
    """Every entry below `path` as a reader sees it: kind, size, mode, link target, bytes, sorted listings."""
    out: dict[str, object] = {}
    for name, kind in sorted(fs.kinds(path)):
        full = "/" + name if path == "/" else f"{path}/{name}"
        st = fs.lstat(full)
        assert st is not None and st.kind is kind, full
        out[full] = (st, fs.readlink(full) if kind is Kind.LINK else None,
                     fs.read(full, 0, 1 << 16) if kind is Kind.FILE else sorted(fs.listdir(full)))
        if kind is Kind.DIR:
            out.update(_everything(fs, full))
    return out


def _absent_paths(fs: TreeReads) -> None:
    for path in ("/no/such/dir", "/etc/", "//etc", "/etc/ld.so.conf/x", ""):
        assert fs.lstat(path) is None, path
        assert list(fs.listdir(path)) == [] and fs.kinds(path) == []


def test_a_host_layer_tree_loads_as_it_was_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """overlay2-style layer directories (a whiteout device, an opaque directory, a link, a name that is not
    UTF-8) merged, kept and loaded again: every entry reads the same, and host paths come back although
    the snapshot stores none that are the layer's root plus the image path."""
    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path / "cache"))
    lower, upper = tmp_path / "l1" / "diff", tmp_path / "l2" / "diff"
    for d in (lower / "etc", lower / "usr/lib/x", lower / "opt/old", upper / "usr/lib", upper / "opt"):
        d.mkdir(parents=True)
    (lower / "etc/ld.so.conf").write_text("/usr/lib/x\n")
    (lower / "usr/lib/x/libgone.so.1").write_bytes(b"\x7fELFgone")
    (lower / "usr/lib/libkeep.so.1").write_bytes(b"\x7fELFkeep")
    (lower / "opt/old/hidden").write_text("lower")
    (upper / "usr/lib/libnew.so.2").write_bytes(b"\x7fELFnew" * 100)
    os.symlink("libnew.so.2", upper / "usr/lib/libnew.so")
    os.mkdir(os.path.join(os.fsencode(upper / "usr/lib"), b"odd-\xff"))
    whiteouts = os.geteuid() == 0
    if whiteouts:  # a 0/0 character device and the opaque xattr need root, as the daemon has
        os.mknod(upper / "usr/lib/x", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        (upper / "opt/old").mkdir()
        os.setxattr(upper / "opt/old", "trusted.overlay.opaque", b"y")
    merged = merge_host_layers([str(upper), str(lower)])
    assert snapshot.save_tree("host", merged)
    loaded = snapshot.load_tree("host")
    assert isinstance(loaded, snapshot.StoredTree)
    assert _everything(loaded) == _everything(merged)
    _absent_paths(loaded)
    if whiteouts:
        assert loaded.lstat("/usr/lib/x") is None and loaded.listdir("/opt/old") == []
    node = loaded.node("/usr/lib/libnew.so.2")
    assert node is not None and node.loc is None and node.layer == 1  # the upper layer's file, at its path
    assert loaded.read("/usr/lib/libnew.so.2", 0, 7) == b"\x7fELFnew"
    assert loaded.read("/usr/lib/libkeep.so.1", 4, 10) == b"keep"  # the lower layer's, cut at its size


def _member(draw: st.DrawFn, i: int) -> tuple[str, bytes | str | None, str]:
    kind = draw(st.sampled_from(["file", "file", "dir", "sym", "hard", "wh"]))
    name = "/".join(draw(st.lists(st.sampled_from(["a", "b", "lib", "ü"]), min_size=1, max_size=3)))
    if kind == "wh":
        parent, _, base = name.rpartition("/")
        return (f"{parent}/.wh.{base}" if parent else f".wh.{base}"), b"", "file"
    if kind == "sym":
        return name, draw(st.sampled_from(["a", "/lib/b", "../x"])), "sym"
    if kind == "hard":
        return name, draw(st.sampled_from(["a", "b/a", "lib"])), "hard"
    return name, (None if kind == "dir" else f"{i}".encode() * draw(st.integers(0, 5))), kind


@st.composite
def _layers(draw: st.DrawFn) -> list[list[tuple[str, bytes | str | None, str]]]:
    return [[_member(draw, i * 100 + j) for j in range(draw(st.integers(1, 8)))]
            for i in range(draw(st.integers(1, 3)))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=_layers())
def test_a_tar_layer_tree_loads_as_it_was_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 layers: list[list[tuple[str, bytes | str | None, str]]]) -> None:
    """Generated layer tars (files, directories, symlinks, hard links, whiteouts) merged, kept and loaded:
    a reader sees the same tree through the snapshot."""
    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path / "cache"))
    blob = io.BytesIO()
    spans = []
    for layer in layers:
        data = _tar(layer)
        spans.append((blob.tell(), len(data)))
        blob.write(data)
    tree = MergedTree()
    for start, size in spans:
        add_tar_layer(tree, blob, start, size)
    assert snapshot.save_tree("tars", tree)
    assert snapshot.load_tree("tars") is None  # a tar-member tree needs the file it reads from
    loaded = snapshot.load_tree("tars", blob)
    assert loaded is not None and _everything(loaded) == _everything(tree)
    _absent_paths(loaded)
