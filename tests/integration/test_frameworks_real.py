"""Frameworks installed from the REAL wheels on PyPI (tests/wheels.py caches them) into the Debian test
image, judged by ldfix and by the image's own loader: `ld.so REQUESTER` in trace mode (LD_TRACE_LOADED_OBJECTS=1; glibc 2.36's `--list`
stops at the first missing library) for what a requester's
DT_NEEDED binds, and for a dlopen a probe object with the requester's RPATH/RUNPATH placed in the
requester's directory. CI runs the torch and onnxruntime cases with the members they need; the whole
installs (several GB) run with `-m frameworks_full`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ldfix.loader.elf import read_elf
from ldfix.loader.elfwrite import build_shared_object
from tests.images import build_image, cuda_env
from tests.schema import validate_scan
from tests.wheels import SITE, install, libraries_only

pytestmark = pytest.mark.docker
S = "/" + SITE
LOADER = "/lib64/ld-linux-x86-64.so.2"
TORCH_SLIM = ("torch/lib/libc10.so", "torch/lib/libc10_cuda.so", "torch/lib/libtorch_global_deps.so",
              "torch/lib/libgomp.so.1", "torch/lib/libcaffe2_nvrtc.so", "torch/version.py")


def ldfix(*args: str, **env: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", *args, "--format", "json", "--no-pull"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    validate_scan(report)
    return report


def real_list(image: str, requester: str, env: dict[str, str] | None = None) -> dict[str, str | None]:
    """What the image's loader binds for the requester's DT_NEEDED: soname -> opened path (None: not found)."""
    args = ["docker", "run", "--rm", "--network", "none", "--entrypoint", LOADER, "-e", "LD_TRACE_LOADED_OBJECTS=1"]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    proc = subprocess.run([*args, image, requester], capture_output=True, text=True, timeout=120)
    out: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        name, sep, rest = line.strip().partition(" => ")
        if sep:
            out[name] = None if rest.startswith("not found") else rest.rsplit(" (", 1)[0]
    assert out, (proc.stdout, proc.stderr)
    return out


def by_requester(report: dict[str, Any], framework: str) -> dict[str, dict[str, dict[str, Any]]]:
    entry = next(e for e in report["frameworks"] if e["framework"] == framework and e["source"] == "installed")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for lib in entry["libraries"]:
        out.setdefault(lib["requester"], {})[lib["soname"]] = lib
    return out


def agree(image: str, report: dict[str, Any], framework: str, env: dict[str, str] | None = None) -> int:
    """Every DT_NEEDED library ldfix says a requester binds is the one the image's loader binds; returns how
    many were compared."""
    compared = 0
    for requester, libs in by_requester(report, framework).items():
        needed = {s: lib for s, lib in libs.items() if lib["how"] == "needed"}
        if not needed:
            continue
        real = real_list(image, requester, env)
        for soname, lib in needed.items():
            if lib["status"] == "runtime-provided":
                continue
            assert real.get(soname) == lib["path"], (requester, soname, real.get(soname), lib)
            compared += 1
    return compared


def _torch(root: Path, nvrtc: bool = True) -> None:
    install("torch==2.14.1", root, lambda n: n in TORCH_SLIM)
    install("nvidia-cuda-runtime==13.0.96", root, libraries_only)
    if nvrtc:
        install("nvidia-cuda-nvrtc", root, libraries_only)


@pytest.fixture(scope="module")
def torch_image() -> str:
    return build_image("ldfix-test/fw:torch-slim", _torch, cuda_env("13.0.0"), "torch-2.14.1-slim-v1")


def test_torch_is_healthy_through_its_rpath_as_its_loader_agrees(torch_image: str) -> None:
    report = ldfix(torch_image)
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    (entry,) = [e for e in report["frameworks"] if e["framework"] == "torch"]
    assert entry["version"] == "2.14.1" and entry["built_for_cuda"] == "13.0"
    libs = by_requester(report, "torch")
    cudart = libs[f"{S}/torch/lib/libc10_cuda.so"]["libcudart.so.13"]
    assert cudart["via"] == "rpath" and cudart["realpath"] == f"{S}/nvidia/cu13/lib/libcudart.so.13"
    assert agree(torch_image, report, "torch") >= 3
    assert "libcudart.so.13" not in {lib["soname"] for lib in report["libraries"]}


def test_torch_without_nvrtc_names_the_library_and_the_wheel() -> None:
    image = build_image("ldfix-test/fw:torch-no-nvrtc", lambda r: _torch(r, nvrtc=False), cuda_env("13.0.0"),
                        "torch-2.14.1-slim-no-nvrtc-v1")
    report = ldfix(image)
    (f,) = [f for f in report["findings"] if f.get("framework") == "torch" and f["severity"] == "error"]
    assert f["code"] == "LIB_ABSENT" and f["soname"] == "libnvrtc.so.13" and "libcaffe2_nvrtc.so" in f["message"]
    assert "pip install nvidia-cuda-nvrtc" in f["fix"]
    assert real_list(image, f"{S}/torch/lib/libcaffe2_nvrtc.so")["libnvrtc.so.13"] is None  # the loader agrees


def _ort(root: Path) -> None:
    install("onnxruntime-gpu==1.31.1", root, libraries_only)
    for spec in ("nvidia-cuda-runtime==13.0.96", "nvidia-curand", "nvidia-cublas"):
        install(spec, root, libraries_only)


def test_onnxruntime_provider_finds_no_wheel_library_and_the_fix_is_confirmed_by_its_loader() -> None:
    image = build_image("ldfix-test/fw:ort", _ort, cuda_env("13.0.0"), "ort-1.31.1-v1")
    report = ldfix(image)
    provider = f"{S}/onnxruntime/capi/libonnxruntime_providers_cuda.so"
    missing = {f["soname"] for f in report["findings"] if f.get("framework") == "onnxruntime"
               and f["code"] == "PATH_MISSING"}
    assert missing == {"libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13"}
    assert agree(image, report, "onnxruntime") == 4  # the loader finds none of them either
    fix = report["fix"]
    assert fix is not None and fix["ld_library_path_add"] == [f"{S}/nvidia/cu13/lib"]
    env = {"LD_LIBRARY_PATH": fix["ld_library_path_add"][0]}
    fixed = ldfix(image, "--env", f"LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}")
    assert not [f for f in fixed["findings"] if f["severity"] == "error"]
    real = real_list(image, provider, env)
    assert all(real[s] == f"{S}/nvidia/cu13/lib/{s}" for s in missing), real


@pytest.mark.frameworks_full
def test_full_torch_install_and_cudnn_dlopen_probe(tmp_path: Path) -> None:
    def full(root: Path) -> None:
        install("torch==2.14.1", root, lambda n: n.startswith("torch/lib/") or n == "torch/version.py")
        for spec in ("nvidia-cuda-runtime==13.0.96", "nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-nccl-cu13",
                     "nvidia-cusparselt-cu13", "nvidia-nvshmem-cu13", "nvidia-cufft", "nvidia-curand",
                     "nvidia-cusparse", "nvidia-nvjitlink", "nvidia-cuda-nvrtc", "nvidia-cufile", "nvidia-cusolver"):
            install(spec, root, libraries_only)
        cudnn = root / SITE / "nvidia/cudnn/lib"
        with open(cudnn / "libcudnn.so.9", "rb") as fh:
            data = fh.read()
        info = read_elf(lambda o, n: data[o:o + n])
        subs = ("libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9")
        (cudnn / ".ldfix-judge.so").write_bytes(build_shared_object(None, subs, rpath=info.rpath,
                                                                     runpath=info.runpath))

    image = build_image("ldfix-test/fw:torch-full", full, cuda_env("13.0.0"), "torch-2.14.1-full-v1")
    report = ldfix(image)
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    assert agree(image, report, "torch") >= 20
    libs = by_requester(report, "torch")[f"{S}/nvidia/cudnn/lib/libcudnn.so.9"]
    real = real_list(image, f"{S}/nvidia/cudnn/lib/.ldfix-judge.so")
    for sub in ("libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"):
        assert real[sub] == libs[sub]["path"], (sub, real, libs[sub])
