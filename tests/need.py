"""What a test needs from the machine. Outside CI a missing Docker daemon (or root) skips the test; with
CI=true it is a failure, so CI cannot go green without having run them."""

from __future__ import annotations

import functools
import os
import subprocess

import pytest


@functools.lru_cache(maxsize=1)
def docker_ok() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {what}: these tests must run in CI")
    pytest.skip(f"{what} (with CI=true this is a failure)")


def require_docker() -> None:
    if not docker_ok():
        missing("no Docker daemon answers")


def require_root() -> None:
    if os.geteuid() != 0:
        missing("not running as root (chroot, ldconfig -r)")
