"""`ldfix scan` against a real Docker daemon, on images built locally that replicate official layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import build_tiny_image
from tests.schema import validate_scan

pytestmark = pytest.mark.docker


def ldfix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})})


def leftovers() -> str:
    return subprocess.run(["docker", "ps", "-aq", "--filter", "label=ldfix=scan"], capture_output=True,
                          text=True).stdout.strip()


def test_stock_replica_is_healthy_through_the_cache(replica: str) -> None:
    proc = ldfix("scan", replica, "--no-pull", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    validate_scan(report)
    libs = {lib["soname"]: lib for lib in report["libraries"]}
    assert libs["libcudnn.so.8"]["via"] == "ld_so_cache"
    # bookworm is merged-/usr: ldconfig scans /lib/x86_64-linux-gnu first, so the cache names that spelling
    assert libs["libcudnn.so.8"]["path"] == "/lib/x86_64-linux-gnu/libcudnn.so.8"
    assert libs["libcudart.so.11.0"]["status"] == "resolved"
    assert all(lib["verified"] is True for lib in report["libraries"])
    assert report["fix"] is None
    assert report["image"]["cuda_version"] == "11.3.1" and report["image"]["cudnn_version"] == "8.2.0.53"
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    assert leftovers() == ""


def test_wheel_dir_nothing_points_at_is_path_missing_with_a_verified_fix(wheel_image: str) -> None:
    proc = ldfix("scan", wheel_image, "--no-pull", "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    validate_scan(report)
    finding = next(f for f in report["findings"] if f["code"] == "PATH_MISSING")
    assert finding["soname"] == "libcudnn.so.9"
    assert report["fix"]["ld_library_path_add"] == ["/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib"]
    assert report["fix"]["verified"] is True
    assert report["fix"]["dockerfile"].startswith("FROM sha256:")
    assert leftovers() == ""


def test_markdown_and_sarif(replica: str) -> None:
    md = ldfix("scan", replica, "--no-pull", "--format", "markdown")
    assert "| `libcudnn.so.8` | resolved |" in md.stdout
    sarif = json.loads(ldfix("scan", replica, "--no-pull", "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["name"] == "ldfix"


def test_unknown_image_with_no_pull_is_exit_3() -> None:
    proc = ldfix("scan", "ldfix-test/does-not-exist:1", "--no-pull")
    assert proc.returncode == 3 and "not present locally" in proc.stderr


def test_shell_less_glibc_image_with_gcc_stubs_is_checked_by_its_own_loader() -> None:
    """No /bin/sh in the image: the loader is the container's entrypoint, so the check still runs. cudart is
    reached through LD_LIBRARY_PATH, cuDNN through the cache (ld.so.conf names its dir), cuBLAS by nothing; once
    the fix adds its dir, cuBLASLt is found through cuBLAS's own RUNPATH ($ORIGIN)."""
    wheel = "/opt/venv/lib/python3.12/site-packages/nvidia"
    image = build_tiny_image("ldfix-test/tiny:gcc", {
        f"{wheel}/cublas/lib/libcublas.so.12": ("libcublas.so.12", ("libcublasLt.so.12",), None, "$ORIGIN"),
        f"{wheel}/cublas/lib/libcublasLt.so.12": ("libcublasLt.so.12", (), None, None),
        f"{wheel}/cuda_runtime/lib/libcudart.so.12": ("libcudart.so.12", (), None, None),
        "/opt/cudnn/lib/libcudnn.so.9": ("libcudnn.so.9", (), None, None),
    }, {"LD_LIBRARY_PATH": f"{wheel}/cuda_runtime/lib"}, conf="/opt/cudnn/lib\n")
    proc = ldfix("scan", image, "--no-pull", "--format", "json", "--lib", "libcublas.so.12")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    validate_scan(report)
    libs = {lib["soname"]: lib for lib in report["libraries"]}
    assert libs["libcudart.so.12"]["via"] == "ld_library_path"
    assert libs["libcudnn.so.9"]["via"] == "ld_so_cache"
    assert libs["libcublas.so.12"]["status"] == "unresolved"
    assert all(lib["verified"] is True for lib in libs.values() if lib["status"] != "runtime-provided")
    codes = {(f["code"], f.get("soname")) for f in report["findings"]}
    assert ("PATH_MISSING", "libcublas.so.12") in codes
    assert report["fix"]["ld_library_path_add"] == [f"{wheel}/cublas/lib"] and report["fix"]["verified"] is True
    assert leftovers() == ""


def _libs(report: dict[str, object]) -> dict[str, tuple[object, object, object]]:
    return {lib["soname"]: (lib["status"], lib["path"], lib["via"]) for lib in report["libraries"]}  # type: ignore


def test_archive_transports_report_what_the_daemon_scan_reports(replica: str, tmp_path: Path) -> None:
    """docker-archive (a docker save tarball), oci-dir and oci-archive (an OCI layout with gzip layers, loose and
    tarred, and with zstd layers) give the same libraries as the daemon scan of the same image, with verified
    null (nothing runs)."""
    from tests.images import oci_layout_from_save

    daemon = json.loads(ldfix("scan", replica, "--no-pull", "--format", "json").stdout)
    validate_scan(daemon)
    save = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(save), replica], check=True)
    oci = oci_layout_from_save(save, tmp_path / "oci")
    oci_tar = tmp_path / "oci.tar"
    subprocess.run(["tar", "-C", str(oci), "-cf", str(oci_tar), "."], check=True)
    oci_zstd = oci_layout_from_save(save, tmp_path / "oci-zstd", compress="zstd")
    for ref in (f"docker-archive:{save}", f"oci-dir:{oci}", f"oci-archive:{oci_tar}", f"oci-dir:{oci_zstd}"):
        proc = ldfix("scan", ref, "--format", "json")
        assert proc.returncode == 0, (ref, proc.stderr)
        report = json.loads(proc.stdout)
        validate_scan(report)
        assert _libs(report) == _libs(daemon), ref
        assert all(lib["verified"] is None for lib in report["libraries"])
        assert report["image"]["env"]["CUDA_VERSION"] == "11.3.1" and report["image"]["id"].startswith("sha256:")
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("ldfix-layer-*")), "no layer is written to disk"


def test_archive_errors_are_exit_3(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    for ref, words in ((f"docker-archive:{tmp_path}/missing.tar", "does not exist"),
                       (f"docker-archive:{tmp_path}/junk.tar", "tar"),
                       (f"oci-dir:{tmp_path}/junk.tar", "not a directory"),
                       (f"oci-dir:{tmp_path}", "neither manifest.json nor index.json")):
        proc = ldfix("scan", ref, "--format", "json")
        assert proc.returncode == 3 and words in proc.stderr, (ref, proc.stderr)


def test_daemon_fallback_through_docker_save_matches_and_cleans_up(replica: str) -> None:
    """When the overlay2 layer directories cannot be read (another driver, a remote daemon; forced here), the
    image is read through docker save; its own loader still checks the result, and the temporary copy goes."""
    direct = json.loads(ldfix("scan", replica, "--no-pull", "--format", "json").stdout)
    validate_scan(direct)
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", replica, "--no-pull", "--format", "json"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", "LDFIX_DAEMON_READ": "save"})
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(proc.stdout)
    validate_scan(saved)
    assert _libs(saved) == _libs(direct)
    assert all(lib["verified"] is True for lib in saved["libraries"] if lib["status"] == "resolved")
    assert any("docker save" in n for n in saved["notes"])
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("ldfix-save-*"))
    assert leftovers() == ""


def test_for_tensorflow_2_4_on_cuda_11_3_is_wrong_major(replica: str) -> None:
    proc = ldfix("scan", replica, "--no-pull", "--format", "json", "--for", "tensorflow==2.4.0")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    validate_scan(report)
    assert report["frameworks"][0]["sonames"][:2] == ["libcudart.so.11.0", "libcublas.so.11"]
    finding = next(f for f in report["findings"] if f["code"] == "WRONG_MAJOR")
    assert finding["soname"] == "libcusolver.so.10" and "libcusolver.so.11" in finding["message"]
    assert report["fix"] is None  # never a symlink across majors
    assert ldfix("scan", replica, "--no-pull", "--for", "tensorflow>=2").returncode == 2


def test_explicit_spells_out_cache_dirs_and_keeps_the_same_files(replica: str) -> None:
    """As the seed story did by hand: every directory that today resolves only through ld.so.cache, on
    LD_LIBRARY_PATH, verified by the image's loader to load exactly the same files as before."""
    proc = ldfix("scan", replica, "--no-pull", "--format", "json", "--explicit")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    validate_scan(report)
    assert report["fix"]["ld_library_path_add"] == ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu"]
    assert report["fix"]["verified"] is True and report["fix"]["reason"].startswith("--explicit")
    assert report["fix"]["env_line"] == ('ENV LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu'
                                         '${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"')


def test_a_failed_pull_is_one_line_exit_3() -> None:
    """No registry is reachable here, so a pull fails the way a denied pull or a missing tag does."""
    proc = ldfix("scan", "ldfix-test/not-in-any-registry:1")
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ldfix: error: pulling ldfix-test/not-in-any-registry:1")


def test_foreign_architecture_image_is_scanned_statically(tmp_path: Path) -> None:
    """An arm64 image on this amd64 host: its loader cannot run here, so the files are read and verified is
    null, with a note that says why."""
    from tests.stubs import compile_stub, host_glibc_root

    root = tmp_path / "root"
    host_glibc_root(root)
    compile_stub(root / "usr/lib/x86_64-linux-gnu/libcudart.so.12", "libcudart.so.12")
    from tests.images import load_rootfs_as

    tag = load_rootfs_as(root, "ldfix-test/foreign:arm64", "arm64")
    try:
        proc = ldfix("scan", tag, "--no-pull", "--format", "json")
        report = json.loads(proc.stdout)
        validate_scan(report)
        assert report["image"]["platform"] == "linux/arm64"
        assert all(lib["verified"] is None for lib in report["libraries"])
        assert any("not this machine's architecture" in n for n in report["notes"])
        assert leftovers() == ""
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_a_whole_verified_scan_with_a_fix_runs_at_most_two_containers(wheel_image: str) -> None:
    """The probe container is created while the image is indexed; the targets and the fix are two runs."""
    import time

    since = f"{time.time():.6f}"  # to the microsecond: an earlier test's containers are no part of this scan
    report = json.loads(ldfix("scan", wheel_image, "--no-pull", "--format", "json").stdout)
    assert report["fix"] and report["fix"]["verified"] is True
    until = f"{time.time() + 0.5:.6f}"
    events = subprocess.run(["docker", "events", "--since", since, "--until", until, "--filter", "label=ldfix=scan",
                             "--filter", "event=create", "--format", "{{.ID}}"], capture_output=True, text=True,
                            timeout=60).stdout.split()
    assert 1 <= len(events) <= 2, events
    assert leftovers() == ""


def test_a_snapshot_of_the_image_gives_the_same_report_and_a_broken_one_is_ignored(wheel_image: str,
                                                                                    tmp_path: Path) -> None:
    """The first scan keeps the merged tree, the library index and the package metadata (image/snapshot.py);
    the next scan of the same image reads them instead of walking the layers and reading METADATA files, and
    must say the same. A truncated or foreign snapshot file is ignored and written again."""
    env = {"LDFIX_CACHE_DIR": str(tmp_path)}
    first = ldfix("scan", wheel_image, "--format", "json", "--no-pull", env=env)
    snaps = sorted((tmp_path / "snapshots").iterdir())
    assert [p.suffix for p in snaps] == [".dists", ".index", ".tree"]
    second = ldfix("scan", wheel_image, "--format", "json", "--no-pull", env=env)
    assert json.loads(first.stdout) == json.loads(second.stdout)
    for p in snaps:
        p.write_bytes(p.read_bytes()[:40])  # truncated
    third = ldfix("scan", wheel_image, "--format", "json", "--no-pull", env=env)
    assert json.loads(third.stdout) == json.loads(first.stdout)
    assert all(p.stat().st_size > 40 for p in snaps)  # rewritten
    off = ldfix("scan", wheel_image, "--format", "json", "--no-pull", env={**env, "LDFIX_NO_CACHE": "1"})
    assert json.loads(off.stdout) == json.loads(first.stdout)
