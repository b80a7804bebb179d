"""Snapshot tests of the human formats (table without a terminal, markdown) for the healthy 11.3.1 cudnn8
replica and the wheel image with an unreachable cuDNN 9. Image IDs and tag hashes are normalised.
`LDFIX_UPDATE_GOLDEN=1` rewrites the snapshots (review the diff before committing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
GOLDEN = Path(__file__).resolve().parent.parent.parent / "fixtures" / "golden"


def normalise(text: str) -> str:
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:<image-id>", text)
    return re.sub(r"(ldfix-test/cuda:[\w.-]+?)-[0-9a-f]{12}\b", r"\1-<hash>", text)


@pytest.mark.parametrize("fmt", ["table", "markdown"])
@pytest.mark.parametrize("which", ["replica", "wheel_image"])
def test_snapshot(which: str, fmt: str, request: pytest.FixtureRequest) -> None:
    image = request.getfixturevalue(which)
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", image, "--no-pull", "--format", fmt],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == (0 if which == "replica" else 1), proc.stderr
    assert "\x1b[" not in proc.stdout, "no ANSI when stdout is not a terminal"
    got = normalise(proc.stdout)
    path = GOLDEN / f"{which}.{'txt' if fmt == 'table' else 'md'}"
    if os.environ.get("LDFIX_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert got == path.read_text()
