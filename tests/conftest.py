"""Shared fixtures. Tests marked `docker` (or `root`) skip when the daemon (or root) is missing, except in
CI (CI=true), where that is a failure: CI must not go green without having run them."""

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


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {what}: these tests must run in CI")
    pytest.skip(f"{what} (with CI=true this is a failure)")


@pytest.fixture(autouse=True)
def _requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        _missing("not running as root (chroot, ldconfig -r)")
    if request.node.get_closest_marker("docker") and not docker_ok():
        _missing("no Docker daemon answers")
