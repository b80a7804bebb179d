"""`ldfix patch` with a real Docker daemon: Docker rejects exactly the files ldfix reports as syntax errors,
the seed story's Dockerfiles on a local stand-in for their base image, and patched files that build and
whose images' own loader then resolves the libraries."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import WHEEL_CUDNN
from tests.schema import validate_patch
from tests.stubs import compile_stub

pytestmark = pytest.mark.docker
FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures" / "dockerfiles"
SEED_BASE = "nvidia/cuda:11.3.1-cudnn8-runtime-ubuntu20.04"


def ldfix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "NO_COLOR": "1"})


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)


def leftovers() -> str:
    return docker("ps", "-aq", "--filter", "label=ldfix=scan").stdout.strip()


SYNTAX_CASES = sorted(p.parent.name for p in (FIXTURES / "corpus").glob("*/expected.findings")
                      if "DOCKERFILE_SYNTAX" in p.read_text() and "heredoc" not in p.parent.name)


@pytest.mark.parametrize("case", SYNTAX_CASES)
def test_docker_rejects_what_ldfix_reports(case: str, tmp_path: Path) -> None:
    """The daemon's builder (classic here: it has no heredocs, so those cases are left out) fails on each file
    ldfix calls a syntax error, with the same message on a line ldfix names."""
    shutil.copy(FIXTURES / "corpus" / case / "Dockerfile", tmp_path / "Dockerfile")
    built = docker("build", "--network", "none", "--force-rm", "-q", str(tmp_path))
    assert built.returncode != 0
    error = built.stderr.strip().splitlines()[-1]
    ours = json.loads(ldfix("patch", str(tmp_path / "Dockerfile"), "--format", "json", "--base-env", "A=1").stdout)
    syntax = [f for f in ours["findings"] if f["code"] == "DOCKERFILE_SYNTAX"]
    line = re.search(r"line (\d+)", error)
    if line:
        assert int(line.group(1)) in {f["line"] for f in syntax}, (error, syntax)
    text = error
    for prefix in (r"Error response from daemon: ", r"dockerfile parse error line \d+: ", r"failed to parse Dockerfile: "):
        text = re.sub("^" + prefix, "", text)
    assert any(text in f["message"] for f in syntax), (text, syntax)


@pytest.fixture(scope="module")
def seed_base(replica: str) -> Iterator[str]:
    """The seed story's base image name, standing in for the registry image: tagged onto the 11.3.1 cudnn8
    runtime replica when this daemon has no such image, and untagged afterwards."""
    tagged = docker("image", "inspect", SEED_BASE).returncode != 0
    if tagged:
        assert docker("tag", replica, SEED_BASE).returncode == 0
    yield SEED_BASE
    if tagged:
        docker("rmi", SEED_BASE)


def test_seed_dockerfile_is_reported_and_untouched(seed_base: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "seed" / "Dockerfile", tmp_path / "Dockerfile")
    proc = ldfix("patch", "Dockerfile", "--write", "--no-pull", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Dockerfile:7 DOCKERFILE_SYNTAX error: text after the line-continuation character" in proc.stderr
    assert "Dockerfile:8 DOCKERFILE_SYNTAX error: dockerfile parse error on line 8: unknown instruction: &&" in \
        proc.stderr
    assert "Dockerfile:11 LDPATH_BAD error: LD_LIBRARY_PATH entry '/usr/lib/x86_64-linux-gnu#' does not exist" in \
        proc.stderr
    assert "Dockerfile:11 LDPATH_BAD warning: legacy 'ENV LD_LIBRARY_PATH value' form" in proc.stderr
    assert (tmp_path / "Dockerfile").read_bytes() == (FIXTURES / "seed" / "Dockerfile").read_bytes()


def test_seed_with_repaired_continuation_gets_only_its_ld_line_fixed(seed_base: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "seed-repaired" / "Dockerfile", tmp_path / "Dockerfile")
    proc = ldfix("patch", "Dockerfile", "--no-pull", "--format", "json", cwd=tmp_path)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    validate_patch(report)
    assert report["diff"] == (FIXTURES / "seed-repaired" / "expected.diff").read_text()
    assert report["fix"]["repaired_lines"] == [14] and report["fix"]["verified"] is True
    # the stock image resolves cuDNN through ld.so.cache: healthy, nothing added to the path
    libs = {lib["soname"]: lib for lib in report["scan"]["libraries"]}
    assert libs["libcudnn.so.8"]["via"] == "ld_so_cache" and libs["libcudnn.so.8"]["verified"] is True
    assert ldfix("patch", "Dockerfile", "--no-pull", "--write", cwd=tmp_path).returncode == 0
    assert ldfix("patch", "Dockerfile", "--no-pull", "--check", cwd=tmp_path).returncode == 0
    assert leftovers() == ""


def _build_and_scan(ctx: Path, base: str, tag: str) -> dict[str, object]:
    built = docker("build", "--network", "none", "--force-rm", "-q", "--build-arg", f"BASE={base}", "-t", tag, str(ctx))
    assert built.returncode == 0, built.stderr
    try:
        proc = ldfix("scan", tag, "--no-pull", "--format", "json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]
    finally:
        docker("rmi", "-f", tag)


@pytest.mark.parametrize("case", ["wheel-env", "legacy-line"])
def test_patched_files_build_and_their_loader_resolves(case: str, wheel_image: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "build" / case / "Dockerfile", tmp_path / "Dockerfile")
    proc = ldfix("patch", "Dockerfile", "--no-pull", "--build-arg", f"BASE={wheel_image}", "--write", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "Dockerfile").read_text()
    assert WHEEL_CUDNN in text
    assert ldfix("patch", "Dockerfile", "--no-pull", "--build-arg", f"BASE={wheel_image}", "--check",
                 cwd=tmp_path).returncode == 0
    report = _build_and_scan(tmp_path, wheel_image, f"ldfix-test/patched:{case}")
    libs = {lib["soname"]: lib for lib in report["libraries"]}  # type: ignore[union-attr]
    assert libs["libcudnn.so.9"]["via"] == "ld_library_path" and libs["libcudnn.so.9"]["verified"] is True
    assert libs["libcudnn.so.8"]["status"] == "resolved"
    assert leftovers() == ""


def test_stale_cache_after_copy_gets_run_ldconfig_with_build(replica: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "build" / "stale-cache" / "Dockerfile", tmp_path / "Dockerfile")
    compile_stub(tmp_path / "libcudart.so.12", "libcudart.so.12")
    proc = ldfix("patch", "Dockerfile", "--build", "--build-arg", f"BASE={replica}", "--format", "json",
                 cwd=tmp_path)
    report = json.loads(proc.stdout)
    validate_patch(report)
    assert proc.returncode == 1, proc.stderr
    assert any(f["code"] == "STALE_CACHE" for f in report["findings"])
    assert report["diff"].endswith("+RUN ldconfig\n")
    assert report["scan"]["fix"]["kind"] == "ldconfig" and report["scan"]["fix"]["verified"] is True  # overlay build
    assert report["fix"]["verified"] is True
    assert ldfix("patch", "Dockerfile", "--build", "--build-arg", f"BASE={replica}", "--write",
                 cwd=tmp_path).returncode == 0
    scanned = _build_and_scan(tmp_path, replica, "ldfix-test/patched:stale-cache")
    libs = {lib["soname"]: lib for lib in scanned["libraries"]}  # type: ignore[union-attr]
    assert libs["libcudart.so.12"]["via"] == "ld_so_cache" and libs["libcudart.so.12"]["verified"] is True
    assert leftovers() == ""


def test_base_image_that_cannot_be_found_is_exit_3(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM ldfix-test/never-built:1\nENV A=1\n")
    proc = ldfix("patch", "Dockerfile", "--no-pull", cwd=tmp_path)
    assert proc.returncode == 3 and "not present locally" in proc.stderr
    assert (tmp_path / "Dockerfile").read_text() == "FROM ldfix-test/never-built:1\nENV A=1\n"


def test_overlay_from_a_built_image_builds_and_resolves(wheel_image: str, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "build" / "wheel-env" / "Dockerfile", tmp_path / "Dockerfile")
    before = (tmp_path / "Dockerfile").read_bytes()
    (tmp_path / "overlay").mkdir()
    proc = ldfix("patch", "Dockerfile", "--image", wheel_image, "--build-arg", f"BASE={wheel_image}", "--no-pull",
                 "--overlay", "overlay/Dockerfile", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the Dockerfile itself still needs the change
    assert (tmp_path / "Dockerfile").read_bytes() == before
    overlay = (tmp_path / "overlay" / "Dockerfile").read_text()
    image_id = docker("image", "inspect", "-f", "{{.Id}}", wheel_image).stdout.strip()
    assert overlay == f'FROM {image_id}\nENV LD_LIBRARY_PATH="{WHEEL_CUDNN}${{LD_LIBRARY_PATH:+:${{LD_LIBRARY_PATH}}}}"\n'
    report = _build_and_scan(tmp_path / "overlay", wheel_image, "ldfix-test/patched:overlay")
    libs = {lib["soname"]: lib for lib in report["libraries"]}  # type: ignore[union-attr]
    assert libs["libcudnn.so.9"]["via"] == "ld_library_path" and libs["libcudnn.so.9"]["verified"] is True


def test_base_image_onbuild_env_counts(tmp_path: Path) -> None:
    """A base whose ONBUILD ENV puts the CUDA dir on LD_LIBRARY_PATH: a child Dockerfile needs no change, and
    the report says where the value came from."""
    from tests.images import load_rootfs_as
    from tests.stubs import host_glibc_root

    root = tmp_path / "root"
    host_glibc_root(root)
    compile_stub(root / "opt/cuda/lib64/libcudart.so.12", "libcudart.so.12")
    tag = load_rootfs_as(root, "ldfix-test/onbuild:1", "amd64", {"PATH": "/usr/bin"},
                         ["ENV LD_LIBRARY_PATH=/opt/cuda/lib64"])
    try:
        (tmp_path / "Dockerfile").write_text(f"FROM {tag}\nENV APP=1\n")
        proc = ldfix("patch", "Dockerfile", "--no-pull", "--format", "json", cwd=tmp_path)
        report = json.loads(proc.stdout)
        validate_patch(report)
        assert proc.returncode == 0 and report["changed"] is False, report
        assert any("ONBUILD" in n for n in report["notes"])
        (tmp_path / "Dockerfile").write_text(f"FROM {tag} AS base\nFROM base\nENV APP=1\n")
        assert ldfix("patch", "Dockerfile", "--no-pull", "--check", cwd=tmp_path).returncode == 0
    finally:
        docker("rmi", "-f", tag)


def test_sarif_puts_image_findings_on_the_from_line(wheel_image: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"# build on the wheel image\nARG X=1\nFROM {wheel_image}\nENV A=1\n")
    sarif = json.loads(ldfix("patch", "Dockerfile", "--no-pull", "--format", "sarif", cwd=tmp_path).stdout)
    missing = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "PATH_MISSING")
    assert missing["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert missing["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Dockerfile"


def test_untagged_from_means_latest_as_docker_builds_it(wheel_image: str, tmp_path: Path) -> None:
    assert docker("tag", wheel_image, "ldfix-test/untagged:latest").returncode == 0
    try:
        (tmp_path / "Dockerfile").write_text("FROM ldfix-test/untagged\nENV A=1\n")
        proc = ldfix("patch", "Dockerfile", "--no-pull", "--format", "json", cwd=tmp_path)
        report = json.loads(proc.stdout)
        validate_patch(report)
        assert any("builds it as ldfix-test/untagged:latest" in n for n in report["notes"])
        assert report["changed"] is True and WHEEL_CUDNN in report["diff"]
    finally:
        docker("rmi", "ldfix-test/untagged:latest")
