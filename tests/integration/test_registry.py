"""Images read straight from a REAL registry (Debian's docker-registry, images pushed with skopeo): the same
report as the daemon path, auth (htpasswd, the Docker config, a credential helper), a multi-platform index
with an arm64 root filesystem made from Debian's arm64 packages, --cache, --registry-mirror, the no-daemon
fallback, and every registry failure as one line with exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ldfix.loader.elf import EM_AARCH64
from ldfix.loader.elfwrite import build_shared_object
from tests.distribution import Distribution, FaultProxy, TokenServer, basic_auth, credential_helper, docker_config
from tests.images import build_tiny_image, debian_arm64_root, load_rootfs_as
from tests.integration.test_finding_codes import CASES, _image
from tests.schema import validate_scan

pytestmark = pytest.mark.docker
NO_DAEMON = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def ldfix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", **env})


@pytest.fixture(scope="module")
def registry() -> Iterator[Distribution]:
    reg = Distribution()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def tiny() -> str:
    return build_tiny_image("ldfix-test/tiny:registry", {
        "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {})


@pytest.fixture(scope="module")
def pushed(registry: Distribution, tiny: str) -> str:
    return registry.push(tiny, "tiny:1")


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report less what only running the loader or naming the image decides."""
    out = json.loads(json.dumps(report))
    out["image"].pop("ref")
    out.pop("notes")
    for lib in out["libraries"]:
        lib.pop("verified")
    if out.get("fix"):
        for key in ("verified", "reason"):  # the reason says whether the loader confirmed it
            out["fix"].pop(key)
    return out


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    validate_scan(report)
    return report


@pytest.mark.parametrize("which", ["replica", "wheel", *sorted(CASES)])
def test_registry_report_equals_the_daemon_report(registry: Distribution, which: str, replica: str,
                                                  wheel_image: str) -> None:
    image = {"replica": replica, "wheel": wheel_image}.get(which) or _image(which)
    args = CASES[which][4] if which in CASES else []
    name = registry.push(image, f"parity/{which.lower().replace('_', '-')}:1")
    daemon = _json(ldfix("scan", image, "--no-pull", "--format", "json", *args))
    remote = _json(ldfix("scan", f"registry:{name}", "--format", "json", *args))
    assert _comparable(remote) == _comparable(daemon)
    assert all(lib["verified"] is None for lib in remote["libraries"])
    assert remote["image"]["id"] == daemon["image"]["id"]


def test_without_a_daemon_a_plain_reference_is_read_from_its_registry(pushed: str) -> None:
    proc = ldfix("scan", pushed, "--format", "json", **NO_DAEMON)
    report = _json(proc)
    assert f"reading {pushed} from its registry" in proc.stderr
    assert [lib["soname"] for lib in report["libraries"] if lib["status"] == "resolved"] == ["libcudart.so.12"]
    proc = ldfix("scan", pushed, "--no-pull", **NO_DAEMON)
    assert proc.returncode == 3 and "cannot reach the Docker daemon" in proc.stderr


def test_docker_hub_names_go_to_the_mirror(registry: Distribution, tiny: str) -> None:
    registry.push(tiny, "library/ldfix-tiny:1")  # what `ldfix-tiny:1` means on Docker Hub
    mirror = f"http://{registry.host}"
    report = _json(ldfix("scan", "ldfix-tiny:1", "--registry-mirror", mirror, "--format", "json", **NO_DAEMON))
    assert report["image"]["ref"] == "registry:docker.io/library/ldfix-tiny:1"
    report = _json(ldfix("scan", "registry:ldfix-tiny:1", "--format", "json", LDFIX_REGISTRY_MIRROR=mirror))
    assert report["libraries"]
    proc = ldfix("scan", "registry:ldfix-tiny:1", "--registry-mirror", "mirror.example")
    assert proc.returncode == 2 and "not an http(s) URL" in proc.stderr


def test_htpasswd_auth_from_the_docker_config_and_a_credential_helper(tiny: str, tmp_path: Path) -> None:
    reg = Distribution(user="ci", password="s3cret")
    try:
        name = reg.push(tiny, "private/tiny:1")
        proc = ldfix("scan", f"registry:{name}", DOCKER_CONFIG=str(tmp_path / "none"))
        assert proc.returncode == 3 and "wants a login" in proc.stderr and "docker login" in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        wrong = docker_config(tmp_path / "wrong", {reg.host: basic_auth("ci", "nope")})
        proc = ldfix("scan", f"registry:{name}", DOCKER_CONFIG=wrong)
        assert proc.returncode == 3 and "denied" in proc.stderr
        good = docker_config(tmp_path / "good", {f"http://{reg.host}": basic_auth("ci", "s3cret")})
        assert _json(ldfix("scan", f"registry:{name}", "--format", "json", DOCKER_CONFIG=good))["libraries"]
        path = credential_helper(tmp_path / "bin", "ldfixtest", "ci", "s3cret")
        helper = docker_config(tmp_path / "helper", {}, credHelpers={reg.host: "ldfixtest"})
        assert _json(ldfix("scan", f"registry:{name}", "--format", "json", DOCKER_CONFIG=helper, PATH=path))
        store = docker_config(tmp_path / "store", {}, credsStore="ldfixtest")
        assert _json(ldfix("scan", f"registry:{name}", "--format", "json", DOCKER_CONFIG=store, PATH=path))
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def multi(registry: Distribution, tiny: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """NAME:multi, a manifest list of the tiny amd64 image and an arm64 root made of Debian's arm64 libc."""
    root = tmp_path_factory.mktemp("arm64") / "root"
    debian_arm64_root(root)
    lib = root / "usr/lib/aarch64-linux-gnu/libcudart.so.12"
    lib.parent.mkdir(parents=True, exist_ok=True)
    lib.write_bytes(build_shared_object("libcudart.so.12", ["libc.so.6"], machine=EM_AARCH64))
    tag = load_rootfs_as(root, "ldfix-test/foreign:registry-arm64", "arm64")
    try:
        registry.push(tag, "multi:arm64")
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    registry.push(tiny, "multi:amd64")
    entries = []
    for arch in ("amd64", "arm64"):
        body, media = registry.manifest("multi", arch)
        entries.append({"mediaType": media, "size": len(body), "digest": registry.put_manifest("multi", arch, body,
                                                                                               media),
                        "platform": {"os": "linux", "architecture": arch, **({"variant": "v8"} if arch == "arm64"
                                                                             else {})}})
    index_type = "application/vnd.docker.distribution.manifest.list.v2+json"
    index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
    registry.put_manifest("multi", "1", index, index_type)
    return f"registry:{registry.host}/multi:1"


def test_a_multi_platform_index_gives_the_platform_asked_for(multi: str) -> None:
    arm = _json(ldfix("scan", multi, "--platform", "linux/arm64", "--format", "json"))
    assert arm["image"]["platform"] == "linux/arm64"
    cudart = next(lib for lib in arm["libraries"] if lib["soname"] == "libcudart.so.12")
    assert cudart["status"] == "resolved" and cudart["path"] == "/usr/lib/aarch64-linux-gnu/libcudart.so.12"
    assert cudart["verified"] is None and not [f for f in arm["findings"] if f["code"] == "WRONG_ARCH"]
    host = _json(ldfix("scan", multi, "--format", "json"))  # the platform Docker would pick here
    assert host["image"]["platform"] == "linux/amd64"
    proc = ldfix("scan", multi, "--platform", "linux/s390x")
    assert proc.returncode == 3 and "has no linux/s390x image (it has: linux/amd64, linux/arm64/v8)" in proc.stderr


def test_cache_keeps_layers_and_what_was_read_so_a_second_scan_downloads_nothing(registry: Distribution,
                                                                                pushed: str, tmp_path: Path) -> None:
    proxy = FaultProxy(registry)
    try:
        ref = "registry:" + pushed.replace(registry.host, proxy.host)
        first = _json(ldfix("scan", ref, "--cache", str(tmp_path / "c"), "--format", "json"))
        assert any("/blobs/" in p for p in proxy.log)
        proxy.log.clear()
        second = _json(ldfix("scan", ref, "--cache", str(tmp_path / "c"), "--format", "json"))
        assert second == first
        assert len([p for p in proxy.log if "/blobs/" in p]) == 1, proxy.log  # the config only, no layer
        assert list((tmp_path / "c" / "blobs" / "sha256").iterdir())
        assert not list((tmp_path / "c").rglob(".tmp-*"))
    finally:
        proxy.stop()


@pytest.mark.parametrize(("fault", "words"), [
    (404, "not found"), (429, "rate-limiting"), (500, "HTTP 500"), (403, "denied"),
    ("truncate", "truncated"), ("corrupt", "does not match its digest"), ("stall", "stalled"),
    ("silent", "did not answer"),
])
def test_registry_failures_are_one_line_exit_3(registry: Distribution, pushed: str, fault: str | int,
                                               words: str, tmp_path: Path) -> None:
    proxy = FaultProxy(registry)
    proxy.fault = fault
    try:
        ref = "registry:" + pushed.replace(registry.host, proxy.host)
        proc = ldfix("scan", ref, "--cache", str(tmp_path / "c"), LDFIX_STALL_TIMEOUT="2", TMPDIR=str(tmp_path))
        assert proc.returncode == 3, (proc.stdout, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stdout == ""
        assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()], "no partial or unverified blob is kept"
        assert not [p for p in tmp_path.iterdir() if p.name != "c"], "nothing is left in TMPDIR"
    finally:
        proxy.stop()


def test_a_dropped_connection_resumes_with_a_range_request(registry: Distribution, pushed: str) -> None:
    proxy = FaultProxy(registry)
    proxy.fault = "drop"
    try:
        ref = "registry:" + pushed.replace(registry.host, proxy.host)
        assert _json(ldfix("scan", ref, "--format", "json"))["libraries"]
        assert any("bytes=" in p for p in proxy.log), proxy.log
    finally:
        proxy.stop()


def test_unknown_tag_and_unknown_layer_media_type(registry: Distribution, pushed: str) -> None:
    proc = ldfix("scan", f"registry:{registry.host}/tiny:nope")
    assert proc.returncode == 3 and "not found" in proc.stderr
    body, media = registry.manifest("tiny", "1")
    manifest = json.loads(body)
    manifest["layers"][0]["mediaType"] = "application/vnd.example.layer.v1+squashfs"
    registry.put_manifest("tiny", "odd", json.dumps(manifest).encode(), media)
    proc = ldfix("scan", f"registry:{registry.host}/tiny:odd")
    assert proc.returncode == 3 and "unknown media type" in proc.stderr, proc.stderr


def test_ctrl_c_in_the_middle_of_a_layer_leaves_nothing_behind(registry: Distribution, pushed: str,
                                                              tmp_path: Path) -> None:
    import signal
    import time

    proxy = FaultProxy(registry)
    proxy.fault = "trickle"
    try:
        ref = "registry:" + pushed.replace(registry.host, proxy.host)
        proc = subprocess.Popen([sys.executable, "-m", "ldfix", "scan", ref, "--cache", str(tmp_path / "c")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TMPDIR": str(tmp_path)})
        deadline = time.time() + 60
        while time.time() < deadline and not list((tmp_path / "c").rglob(".tmp-*")):
            time.sleep(0.1)
        assert list((tmp_path / "c").rglob(".tmp-*")), "the layer download started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
        assert not [p for p in (tmp_path / "c").rglob("*") if p.is_file()], "no partial blob is kept"
    finally:
        proxy.stop()


def test_bearer_token_auth_as_docker_hub_does_it(tiny: str) -> None:
    """distribution with `auth: token`: a 401 with WWW-Authenticate: Bearer realm,service,scope, an anonymous
    token from the realm, then the request again with it."""
    tokens = TokenServer()
    reg = Distribution(token=tokens)
    try:
        name = reg.push(tiny, "tok/tiny:1")  # skopeo fetches its own push token from the same service
        tokens.requests.clear()
        report = _json(ldfix("scan", f"registry:{name}", "--format", "json"))
        assert [lib["soname"] for lib in report["libraries"] if lib["status"] == "resolved"] == ["libcudart.so.12"]
        assert "repository:tok/tiny:pull" in tokens.requests
    finally:
        reg.stop()
        tokens.stop()
    # the realm's token service gone: one line, exit 3
    tokens = TokenServer()
    reg = Distribution(token=tokens)
    try:
        tokens.stop()
        proc = ldfix("scan", f"registry:{reg.host}/tok/tiny:1")
        assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    finally:
        reg.stop()
