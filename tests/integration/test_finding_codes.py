"""One image per finding code, each scanned through the daemon: the code is reported for the right soname,
with its evidence, and a fix only where a safe one exists, verified by the image's own loader.

Most images are tiny and shell-less (this machine's loader and libc plus gcc-built stubs); STALE_CACHE uses
the Debian image because its fix (RUN ldconfig) is verified in an overlay build that needs a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ldfix.loader.elf import EM_AARCH64
from ldfix.loader.elfwrite import build_shared_object
from tests.images import build_image, build_tiny_image, cuda_env, write_lib
from tests.schema import validate_scan

pytestmark = pytest.mark.docker
WHEEL = "/opt/venv/lib/python3.12/site-packages/nvidia"
Lib = tuple[str, tuple[str, ...], str | None, str | None]


def ldfix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


def _aarch64_cudart(root: Path) -> None:
    target = root / "usr/lib/x86_64-linux-gnu/libcudart.so.12"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(build_shared_object("libcudart.so.12", [], machine=EM_AARCH64))


def _stub_libcuda(root: Path) -> None:
    stubs = root / "usr/local/cuda/lib64/stubs"
    (stubs / "libcuda.so.1").symlink_to("libcuda.so")  # the "fix" people copy from forums


def _late_cudart(root: Path) -> None:
    write_lib(root, "/usr/local/lib/libcudart.so.12", "libcudart.so.12")  # after ldconfig ran: the cache is stale


# code: (libs, env, ld.so.conf, after-hook, extra scan args, soname the finding names, fix kind or None)
CASES: dict[str, tuple[dict[str, Lib], dict[str, str], str, Callable[[Path], None] | None, list[str], str,
                       str | None]] = {
    "PATH_MISSING": ({"/opt/cuda/lib64/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {}, "", None, [],
                     "libcudart.so.12", "env"),
    "LIB_ABSENT": ({"/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {}, "", None,
                   ["--lib", "libcublas.so.12"], "libcublas.so.12", None),
    "WRONG_MAJOR": ({"/usr/lib/x86_64-linux-gnu/libcusolver.so.11": ("libcusolver.so.11", (), None, None)}, {}, "",
                    None, ["--lib", "libcusolver.so.10"], "libcusolver.so.10", None),
    "NO_DEV_SYMLINK": ({"/usr/lib/x86_64-linux-gnu/libnvrtc.so.12": ("libnvrtc.so.12", (), None, None)}, {}, "", None,
                       ["--lib", "libnvrtc.so", "--fail-on", "warning"], "libnvrtc.so", None),
    "SHADOWED": ({"/usr/local/cuda/lib64/libcublasLt.so.12": ("libcublasLt.so.12", (), None, None),
                  f"{WHEEL}/cublas/lib/libcublas.so.12": ("libcublas.so.12", ("libcublasLt.so.12",), None, "$ORIGIN"),
                  f"{WHEEL}/cublas/lib/libcublasLt.so.12": ("libcublasLt.so.12", (), None, None)},
                 {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64"}, f"{WHEEL}/cublas/lib\n", None,
                 ["--fail-on", "warning"], "libcublasLt.so.12", None),
    "TRANSITIVE": ({"/opt/a/libcudnn.so.9": ("libcudnn.so.9", ("libcudnn_graph.so.9",), None, None),
                    "/opt/b/libcudnn_graph.so.9": ("libcudnn_graph.so.9", (), None, None)},
                   {}, "/opt/a\n", None, [], "libcudnn.so.9", "env"),
    "COMPAT": ({"/usr/local/cuda/compat/libcuda.so.1": ("libcuda.so.1", (), None, None),
                "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)},
               {"LD_LIBRARY_PATH": "/usr/local/cuda/compat"}, "", None, [], "libcuda.so.1", None),
    "STUB": ({"/usr/local/cuda/lib64/stubs/libcuda.so": ("libcuda.so", (), None, None),
              "/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)},
             {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64/stubs"}, "", _stub_libcuda, [], "libcuda.so.1", None),
    "LDPATH_BAD": ({"/opt/cuda/lib64/libcudart.so.12": ("libcudart.so.12", (), None, None)},
                   {"LD_LIBRARY_PATH": "/opt/cuda/lib64:/usr/lib/x86_64-linux-gnu#"}, "", None,
                   ["--fail-on", "warning"], "", None),
    "WRONG_ARCH": ({"/usr/lib/x86_64-linux-gnu/libcublas.so.12": ("libcublas.so.12", (), None, None)}, {}, "",
                   _aarch64_cudart, [], "libcudart.so.12", None),
    "NO_DRIVER": ({"/usr/lib/x86_64-linux-gnu/libcudart.so.12": ("libcudart.so.12", (), None, None)}, {}, "", None,
                  ["--fail-on", "info"], "libcuda.so.1", None),
}


def _image(code: str) -> str:
    libs, env, conf, after, _, _, _ = CASES[code]
    if code == "STALE_CACHE":
        raise AssertionError
    return build_tiny_image(f"ldfix-test/code:{code.lower().replace('_', '-')}", libs, env, conf, after,
                            after.__name__ if after else "")


def _check(report: dict[str, Any], code: str, soname: str, fix_kind: str | None) -> None:
    validate_scan(report)
    found = [f for f in report["findings"] if f["code"] == code]
    assert found, report["findings"]
    if soname:
        assert soname in {f.get("soname") for f in found}, found
    assert all(f["message"] for f in found)
    if code not in ("NO_DRIVER", "LDPATH_BAD"):
        assert any(f["evidence"] for f in found), "each finding carries its search trace"
    if fix_kind is None:
        assert report["fix"] is None
    else:
        assert report["fix"]["kind"] == fix_kind and report["fix"]["verified"] is True
    resolved = [lib for lib in report["libraries"] if lib["status"] == "resolved"]
    assert all(lib["verified"] is True for lib in resolved), "the model agrees with the image's own loader"


@pytest.mark.parametrize("code", sorted(CASES))
def test_finding_code(code: str) -> None:
    _, _, _, _, args, soname, fix_kind = CASES[code]
    proc = ldfix("scan", _image(code), "--no-pull", "--format", "json", *args)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    _check(json.loads(proc.stdout), code, soname, fix_kind)
    assert subprocess.run(["docker", "ps", "-aq", "--filter", "label=ldfix=scan"], capture_output=True,
                          text=True).stdout.strip() == ""


def test_stale_cache_gets_a_run_ldconfig_fix_verified_in_an_overlay_build() -> None:
    image = build_image("ldfix-test/code:stale-cache", _late_cudart, cuda_env("12.8.1"), "stale-v1")
    proc = ldfix("scan", image, "--no-pull", "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    _check(report, "STALE_CACHE", "libcudart.so.12", "ldconfig")
    assert report["fix"]["run_lines"] == ["RUN ldconfig"] and report["fix"]["dockerfile"].endswith("RUN ldconfig\n")
    images = subprocess.run(["docker", "images", "-q", "--filter", "label=ldfix=scan"], capture_output=True,
                            text=True).stdout.strip()
    assert images == "", "the throwaway overlay image is removed"


def _usr_lib64_cudart(root: Path) -> None:
    from tests.stubs import compile_stub

    compile_stub(root / "usr/lib64/libcudart.so.12", "libcudart.so.12")


def test_system_dir_the_cache_does_not_cover_gets_an_ld_so_conf_d_fix(tmp_path: Path) -> None:
    """/usr/lib64 on a Debian image: no search path reaches it; the better fix is a conf file that sorts
    last plus ldconfig (every process then finds it), verified in an overlay build and then by a real build
    of the patched Dockerfile."""
    image = build_image("ldfix-test/code:usr-lib64", _usr_lib64_cudart, cuda_env("12.8.1"), "usr-lib64-v1")
    proc = ldfix("scan", image, "--no-pull", "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    _check(report, "PATH_MISSING", "libcudart.so.12", "ldconfig")
    line = "RUN printf '%s\\n' /usr/lib64 > /etc/ld.so.conf.d/zz-ldfix.conf && ldconfig"
    assert report["fix"]["run_lines"] == [line] and report["fix"]["ld_library_path_add"] == []
    (tmp_path / "Dockerfile").write_text(f"FROM {image}\nENV APP=1\nRUN true\n")
    patch = subprocess.run([sys.executable, "-m", "ldfix", "patch", "Dockerfile", "--no-pull", "--write"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert patch.returncode == 0, patch.stderr
    assert (tmp_path / "Dockerfile").read_text() == f"FROM {image}\nENV APP=1\nRUN true\n{line}\n"
    tag = "ldfix-test/patched:usr-lib64"
    built = subprocess.run(["docker", "build", "--network", "none", "--force-rm", "-q", "-t", tag, str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    try:
        after = json.loads(ldfix("scan", tag, "--no-pull", "--format", "json").stdout)
        libs = {lib["soname"]: lib for lib in after["libraries"]}
        assert libs["libcudart.so.12"]["via"] == "ld_so_cache" and libs["libcudart.so.12"]["verified"] is True
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
