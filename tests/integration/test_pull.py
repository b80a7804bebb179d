"""Pulls through the real daemon from a registry served on 127.0.0.1 (tests/registry.py): progress on
stderr, a tag that does not exist, a denied pull, and Ctrl-C in the middle of a pull."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.images import build_tiny_image
from tests.registry import Registry
from tests.schema import validate_scan

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def source_image() -> str:
    return build_tiny_image("ldfix-test/tiny:pull", {
        "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {})


@pytest.fixture()
def registry(source_image: str) -> Iterator[Registry]:
    with Registry(source_image) as reg:
        yield reg


@pytest.fixture()
def slow_registry(source_image: str) -> Iterator[Registry]:
    with Registry(source_image, slow=True) as reg:
        yield reg


def ldfix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def _rmi(ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def ours() -> str:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=ldfix=scan"], capture_output=True,
                          text=True).stdout.strip()


def test_a_missing_image_is_pulled_with_progress_then_scanned(registry: Registry) -> None:
    ref = registry.ref("ldfix/pull-plain")
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


def test_pull_progress_bars_name_each_layer(registry: Registry) -> None:
    ref = registry.ref("ldfix/pull-bars")
    layer = registry.noise_layer.split(":")[1][:12]
    try:
        proc = ldfix("scan", ref, "--format", "json", FORCE_COLOR="1", NO_COLOR="")
        assert proc.returncode == 0, proc.stderr
        assert layer in proc.stderr  # one rich bar per layer, labelled with its short id
        json.loads(proc.stdout)  # the report itself stays clean JSON on stdout
    finally:
        _rmi(ref)


@pytest.mark.parametrize(("name", "tag", "words"), [("ldfix/pull-missing", "nope", "manifest unknown"),
                                                     ("denied/image", None, "denied")])
def test_failed_pulls_are_one_line_exit_3(registry: Registry, name: str, tag: str | None, words: str) -> None:
    proc = ldfix("scan", registry.ref(name, tag))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3 and len(lines) == 1 and words in lines[0] and "hint:" in lines[0], proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_in_the_middle_of_a_pull(slow_registry: Registry, sig: int) -> None:
    ref = slow_registry.ref(f"ldfix/pull-interrupted-{int(sig)}")
    proc = subprocess.Popen([sys.executable, "-m", "ldfix", "scan", ref, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    try:
        time.sleep(2.0)  # a 1 MB layer of noise trickles out at 80 KB/s: the pull is under way
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
        assert ours() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
        _rmi(ref)


def test_platform_is_passed_to_the_pull_and_checked(registry: Registry) -> None:
    ref = registry.ref("ldfix/pull-platform")
    try:
        proc = ldfix("scan", ref, "--platform", "linux/amd64", "--format", "json", NO_COLOR="1")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["image"]["platform"] == "linux/amd64"
        other = ldfix("scan", ref, "--platform", "linux/arm64", "--no-pull")
        assert other.returncode == 3 and "not linux/arm64" in other.stderr
    finally:
        _rmi(ref)


def test_a_digest_reference_is_pulled_and_scanned(registry: Registry) -> None:
    import hashlib

    digest = "sha256:" + hashlib.sha256(registry.manifest).hexdigest()
    ref = f"127.0.0.1:{registry.port}/ldfix/pull-digest@{digest}"
    try:
        proc = ldfix("scan", ref, "--format", "json", NO_COLOR="1")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["image"]["ref"] == ref
    finally:
        _rmi(ref)
