"""The snapshot folder stays bounded: the least recently used snapshots go first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ldfix.image import snapshot


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
