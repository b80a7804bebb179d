"""The command line on dir: images built from generated layouts (real files, real loader in a chroot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ldfix.errors import UsageError
from ldfix.image.refs import parse_ref
from ldfix.loader.elfwrite import build_shared_object as so
from tests.schema import validate_scan


def ldfix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def make_root(path: str, stale: bool = False) -> str:
    root = os.path.join(path, "root")
    os.makedirs(root + "/lib64")
    shutil.copy2("/lib64/ld-linux-x86-64.so.2", root + "/lib64/")
    os.makedirs(root + "/usr/local/cuda-11.8/targets/x86_64-linux/lib")
    os.makedirs(root + "/opt/wheel/nvidia/cudnn/lib")
    os.makedirs(root + "/etc/ld.so.conf.d")
    with open(root + "/usr/local/cuda-11.8/targets/x86_64-linux/lib/libcudart.so.11.0", "wb") as fh:
        fh.write(so("libcudart.so.11.0"))
    with open(root + "/opt/wheel/nvidia/cudnn/lib/libcudnn.so.8", "wb") as fh:
        fh.write(so("libcudnn.so.8"))
    with open(root + "/etc/ld.so.conf.d/000_cuda.conf", "w") as fh:
        fh.write("/usr/local/cuda-11.8/targets/x86_64-linux/lib\n")
    with open(root + "/etc/ld.so.conf", "w") as fh:
        fh.write("include /etc/ld.so.conf.d/*.conf\n")
    if not stale:
        subprocess.run(["ldconfig", "-r", root], check=True)
    else:
        subprocess.run(["ldconfig", "-r", root, "-n", "/nonexistent"], check=False, capture_output=True)
        with open(root + "/etc/ld.so.cache", "wb") as fh:
            fh.write(b"glibc-ld.so.cache1.1" + b"\0" * 28 + b"\x02" + b"\0" * 19)
    return root


@pytest.mark.root
def test_scan_dir_json_reports_cache_resolution_and_path_missing(tmp_path: object) -> None:
    root = make_root(str(tmp_path))
    proc = ldfix("scan", f"dir:{root}", "--format", "json", "--env", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    validate_scan(report)
    libs = {lib["soname"]: lib for lib in report["libraries"]}
    assert libs["libcudart.so.11.0"]["status"] == "resolved"
    assert libs["libcudart.so.11.0"]["via"] == "ld_so_cache"
    assert libs["libcudart.so.11.0"]["verified"] is True
    assert libs["libcudnn.so.8"]["status"] == "unresolved"
    assert libs["libcuda.so.1"]["status"] == "runtime-provided"
    codes = {f["code"] for f in report["findings"]}
    assert "PATH_MISSING" in codes and "NO_DRIVER" in codes
    assert report["fix"]["ld_library_path_add"] == ["/opt/wheel/nvidia/cudnn/lib"]
    assert report["fix"]["verified"] is True
    assert report["fix"]["env_line"] == \
        'ENV LD_LIBRARY_PATH="/opt/wheel/nvidia/cudnn/lib${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"'


@pytest.mark.root
def test_stale_cache_is_its_own_finding_with_an_ldconfig_fix(tmp_path: object) -> None:
    root = make_root(str(tmp_path), stale=True)
    proc = ldfix("scan", f"dir:{root}", "--format", "json", "--lib", "libcudart.so.11.0")
    report = json.loads(proc.stdout)
    validate_scan(report)
    stale = [f for f in report["findings"] if f["code"] == "STALE_CACHE"]
    assert stale and stale[0]["soname"] == "libcudart.so.11.0"


@pytest.mark.root
def test_ldpath_bad_flags_the_stray_hash_and_empty_entry(tmp_path: object) -> None:
    root = make_root(str(tmp_path))
    proc = ldfix("scan", f"dir:{root}", "--format", "json", "--static",
                 "--env", "LD_LIBRARY_PATH=:/usr/local/cuda-11.8/lib64:/usr/lib/x86_64-linux-gnu#")
    report = json.loads(proc.stdout)
    validate_scan(report)
    messages = [f["message"] for f in report["findings"] if f["code"] == "LDPATH_BAD"]
    assert any("'#'" in m for m in messages) and any("empty entry" in m for m in messages)
    assert all(lib["verified"] is None for lib in report["libraries"])


def test_bad_input_gives_one_line_and_exit_codes() -> None:
    missing = ldfix("scan", "dir:/does/not/exist", "--format", "json")
    assert missing.returncode == 3 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert ldfix("scan", "nvidia/cuda", "--format", "json").returncode == 2
    assert ldfix("scan", "Bad Ref!", "--format", "json").returncode == 2
    assert ldfix("explain", "NOPE").returncode == 2
    assert ldfix("scan", "--bogus").returncode == 2


def test_explain_prints_every_part() -> None:
    proc = ldfix("explain", "stale_cache")
    assert proc.returncode == 0
    for part in ("STALE_CACHE", "How it is detected", "How it is fixed", "Example"):
        assert part in proc.stdout


def test_refs_need_an_explicit_tag() -> None:
    with pytest.raises(UsageError):
        parse_ref("nvidia/cuda")
    assert parse_ref("nvidia/cuda:11.3.1-cudnn8-runtime-ubuntu20.04").tag == "11.3.1-cudnn8-runtime-ubuntu20.04"
    assert parse_ref("localhost:5000/x/y:1").repository == "localhost:5000/x/y"
    assert parse_ref("dir:/x").transport == "dir"


def test_framework_tables() -> None:
    from ldfix.knowledge import framework_needs

    tf = framework_needs("tensorflow==2.4.0")
    assert "libcusolver.so.10" in tf.sonames and "libcudnn.so.8" in tf.sonames
    assert "libcudnn.so.9" in framework_needs("tensorflow==2.18.0").sonames
    assert "libcudart.so.12" in framework_needs("torch==2.3.1+cu121").sonames
    for bad, words in (("tensorflow", "exact version"), ("mxnet==1.9.1", "unknown framework"), ("jax==0.4.30", "no table"),
                       ("torch>=2", "not a range"), ("tensorflow==0.1", "no table")):
        with pytest.raises(ValueError, match=words):
            framework_needs(bad)


def test_unreachable_daemon_with_no_pull_is_one_line_exit_3() -> None:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", "foo/bar:1", "--no-pull"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Docker daemon" in lines[0] and "hint:" in lines[0]
    # without --no-pull the registry is asked instead (unreachable here): the notice, then one error line
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", "127.0.0.1:9/foo/bar:1"], capture_output=True,
                          text=True, timeout=60, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3 and "reading 127.0.0.1:9/foo/bar:1 from its registry" in lines[0]
    assert len(lines) == 2 and lines[1].startswith("ldfix: error: cannot reach 127.0.0.1:9") and "hint:" in lines[1]


def test_cuda_release_table() -> None:
    from ldfix.knowledge import cuda

    k = cuda()
    assert k.releases_for("libcusolver.so.10") == "CUDA 10.1-11.0"
    assert k.releases_for("libcudart.so.11.0") == "CUDA 11.0-11.8"
    assert k.soname_in_release("11.3.1", "libcusolver.so.10") == "libcusolver.so.11"
    assert k.soname_in_release("12.8.1", "libcufft.so.10") == "libcufft.so.11"
    assert k.releases_for("libcudnn.so.9") == "CUDA 12.x, 13.x"
    assert k.releases_for("libfoo.so.1") is None


def test_a_musl_image_is_said_to_be_out_of_scope(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path)) / "root"
    (root / "lib").mkdir(parents=True)
    (root / "lib/ld-musl-x86_64.so.1").write_bytes(b"\x7fELF musl loader stand-in")
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/libcudart.so.12").write_bytes(so("libcudart.so.12", []))
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", f"dir:{root}", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stdout)
    validate_scan(report)
    assert any("ld-musl-x86_64.so.1" in n and "do not apply" in n for n in report["notes"])
    assert all(lib["verified"] is None for lib in report["libraries"])
