"""Pulls through the real daemon from the real registry (Debian's docker-registry on 127.0.0.1, which Docker
treats as insecure), images pushed with skopeo: progress on stderr, a tag that does not exist, a registry
that wants a login, Ctrl-C in the middle of a pull (the blob trickles through tests/distribution.py's fault
proxy), --platform and digest references."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.distribution import Distribution, FaultProxy
from tests.images import build_tiny_image
from tests.schema import validate_scan

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def source_image() -> str:
    return build_tiny_image("ldfix-test/tiny:pull", {
        "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {})


@pytest.fixture(scope="module")
def registry() -> Iterator[Distribution]:
    reg = Distribution()
    yield reg
    reg.stop()


def ldfix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def _rmi(ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def ours() -> str:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=ldfix=scan"], capture_output=True,
                          text=True).stdout.strip()


def test_a_missing_image_is_pulled_with_progress_then_scanned(registry: Distribution, source_image: str) -> None:
    ref, _ = registry.push_fresh(source_image, "ldfix/pull-plain:1")
    try:
        proc = ldfix("scan", ref, "--format", "json", NO_COLOR="1")
        assert proc.returncode == 0, proc.stderr
        assert "Downloaded newer image" in proc.stderr  # plain progress lines when stderr is not a terminal
        report = json.loads(proc.stdout)
        validate_scan(report)
        assert report["image"]["ref"] == ref
        assert {lib["soname"]: lib["via"] for lib in report["libraries"]}["libcudart.so.12"] == "ld_so_cache"
    finally:
        _rmi(ref)


def test_pull_progress_bars_name_each_layer(registry: Distribution, source_image: str) -> None:
    ref, layer = registry.push_fresh(source_image, "ldfix/pull-bars:1")
    try:
        proc = ldfix("scan", ref, "--format", "json", FORCE_COLOR="1", NO_COLOR="")
        assert proc.returncode == 0, proc.stderr
        assert layer in proc.stderr  # one rich bar per layer, labelled with its short id
        json.loads(proc.stdout)  # the report itself stays clean JSON on stdout
    finally:
        _rmi(ref)


def test_failed_pulls_are_one_line_exit_3(registry: Distribution, source_image: str) -> None:
    registry.push(source_image, "ldfix/pull-missing:1")
    private = Distribution(user="ci", password="s3cret")
    try:
        private.push(source_image, "ldfix/private:1")
        for ref, words in ((f"{registry.host}/ldfix/pull-missing:nope", "manifest unknown"),
                           (f"{private.host}/ldfix/private:1", "no basic auth credentials")):
            proc = ldfix("scan", ref)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 3 and len(lines) == 1 and words in lines[0] and "hint:" in lines[0], proc.stderr
    finally:
        private.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_in_the_middle_of_a_pull(registry: Distribution, source_image: str, sig: int) -> None:
    pushed, _ = registry.push_fresh(source_image, f"ldfix/pull-interrupted-{int(sig)}:1")
    proxy = FaultProxy(registry)
    proxy.fault = "trickle"
    ref = pushed.replace(registry.host, proxy.host)
    proc = subprocess.Popen([sys.executable, "-m", "ldfix", "scan", ref, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        time.sleep(2.0)  # a 1 MB layer of noise trickles out at 40 KB/s: the pull is under way
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
        assert ours() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.stop()
        _rmi(ref)


def test_platform_is_passed_to_the_pull_and_checked(registry: Distribution, source_image: str) -> None:
    ref, _ = registry.push_fresh(source_image, "ldfix/pull-platform:1")
    try:
        proc = ldfix("scan", ref, "--platform", "linux/amd64", "--format", "json", NO_COLOR="1")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["image"]["platform"] == "linux/amd64"
        other = ldfix("scan", ref, "--platform", "linux/arm64", "--no-pull")
        assert other.returncode == 3 and "not linux/arm64" in other.stderr
    finally:
        _rmi(ref)


def test_a_digest_reference_is_pulled_and_scanned(registry: Distribution, source_image: str) -> None:
    import hashlib

    pushed, _ = registry.push_fresh(source_image, "ldfix/pull-digest:1")
    body, _ = registry.manifest("ldfix/pull-digest", "1")
    ref = f"{registry.host}/ldfix/pull-digest@sha256:{hashlib.sha256(body).hexdigest()}"
    try:
        proc = ldfix("scan", ref, "--format", "json", NO_COLOR="1")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["image"]["ref"] == ref
    finally:
        _rmi(ref)
        _rmi(pushed)
