"""No container is left behind: not after Ctrl-C (or SIGTERM) in the middle of a scan, and not when the
image's loader hangs. The image here makes the loader block for good: LD_LIBRARY_PATH names a directory whose
libcudart.so.12 is a FIFO, and open() on a FIFO waits for a writer that never comes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.images import build_tiny_image

pytestmark = pytest.mark.docker


def _fifo(root: Path) -> None:
    (root / "opt/block").mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "opt/block/libcudart.so.12")


@pytest.fixture(scope="module")
def hanging_image() -> str:
    return build_tiny_image("ldfix-test/hang:fifo", {
        "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)},
        {"LD_LIBRARY_PATH": "/opt/block"}, "", _fifo, "fifo")


def ours() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=ldfix=scan"], capture_output=True,
                          text=True).stdout.split()


def _scan(image: str, timeout: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ldfix", "scan", image, "--no-pull", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1", "LDFIX_LOADER_TIMEOUT": timeout})


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_in_the_middle_of_a_scan_removes_its_containers(hanging_image: str, sig: int) -> None:
    assert ours() == []
    proc = _scan(hanging_image, "120")
    deadline = time.monotonic() + 60
    while not ours():  # the loader's container exists and is blocked on the FIFO
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no container appeared"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert ours() == []


def test_a_hanging_loader_times_out_and_the_scan_still_reports(hanging_image: str) -> None:
    proc = _scan(hanging_image, "3")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), err
    report = json.loads(out)
    assert any("could not be asked" in n for n in report["notes"])
    assert all(lib["verified"] is None for lib in report["libraries"])
    assert ours() == []
