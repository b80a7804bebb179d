"""Shared fixtures. Tests marked `docker` (or `root`) skip when the daemon (or root) is missing, except in
CI (CI=true), where that is a failure (tests/need.py)."""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.need import require_docker, require_root

# scans keep image snapshots (ldfix/image/snapshot.py) in a folder of this test run, never in the user's cache
os.environ.setdefault("LDFIX_CACHE_DIR", tempfile.mkdtemp(prefix="ldfix-test-cache-"))


@pytest.fixture(autouse=True)
def _requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root"):
        require_root()
    if request.node.get_closest_marker("docker"):
        require_docker()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`slow` and `frameworks_full` tests run only when `-m` asks for them."""
    if config.getoption("-m"):
        return
    for item in items:
        for name in ("slow", "frameworks_full"):
            if item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=f"run with -m {name}"))
