"""Shared fixtures. Tests marked `docker` (or `root`) skip when the daemon (or root) is missing, except in
CI (CI=true), where that is a failure (tests/need.py)."""

from __future__ import annotations

import pytest

from tests.need import require_docker, require_root


@pytest.fixture(autouse=True)
def _requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root"):
        require_root()
    if request.node.get_closest_marker("docker"):
        require_docker()
