"""Replicas of the official image layouts (11.3.1 base, runtime and cudnn8-runtime; 11.8.0 cudnn8-runtime;
12.8.1 cudnn-runtime, where LD_LIBRARY_PATH became /usr/local/cuda/lib64): each stock image is healthy, every
library resolves the way the image's own loader says, and ldfix offers no fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial

import pytest

from tests.images import build_image, cuda_env, cuda_layout
from tests.schema import validate_scan

pytestmark = pytest.mark.docker

# name: (CUDA version, flavour, cuDNN major, NV_CUDNN_VERSION, /usr/local/cuda/lib64 on LD_LIBRARY_PATH)
REPLICAS = {
    "11.3.1-base": ("11.3.1", "base", None, None, False),
    "11.3.1-runtime": ("11.3.1", "runtime", None, None, False),
    "11.3.1-cudnn8-runtime": ("11.3.1", "runtime", 8, "8.2.0.53", False),
    "11.8.0-cudnn8-runtime": ("11.8.0", "runtime", 8, "8.6.0.163", False),
    "12.8.1-cudnn-runtime": ("12.8.1", "runtime", 9, "9.8.0.87-1", True),
}


def replica_image(name: str) -> str:
    version, flavour, cudnn, cudnn_version, lib64 = REPLICAS[name]
    return build_image(f"ldfix-test/cuda:{name}", partial(cuda_layout, version=version, flavour=flavour, cudnn=cudnn,
                                                          cuda_lib64_env=lib64),
                       cuda_env(version, cudnn_version, lib64), f"replica-v1-{name}")


def ldfix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("name", sorted(REPLICAS))
def test_stock_replica_is_healthy(name: str) -> None:
    version, flavour, cudnn, cudnn_version, lib64 = REPLICAS[name]
    proc = ldfix("scan", replica_image(name), "--no-pull", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    report = json.loads(proc.stdout)
    validate_scan(report)
    libs = {lib["soname"]: lib for lib in report["libraries"]}
    cudart = "libcudart.so.12" if version.startswith("12") else "libcudart.so.11.0"
    assert libs[cudart]["status"] == "resolved"
    # before 12.8.1 the toolkit resolves through ld.so.cache; from 12.8.1 LD_LIBRARY_PATH names it first
    assert libs[cudart]["via"] == ("ld_library_path" if lib64 else "ld_so_cache")
    assert ("libcublas.so.11" in libs or "libcublas.so.12" in libs) == (flavour == "runtime")
    if cudnn:
        assert libs[f"libcudnn.so.{cudnn}"]["via"] == "ld_so_cache"
        assert f"libcudnn_ops{'_infer' if cudnn == 8 else ''}.so.{cudnn}" in libs
    assert libs["libcuda.so.1"]["status"] == "runtime-provided"  # the compat copy is on no search path
    assert all(lib["verified"] is True for lib in libs.values() if lib["status"] == "resolved")
    assert report["fix"] is None and not [f for f in report["findings"] if f["severity"] != "info"]
    assert report["image"]["cuda_version"] == version
    assert report["image"]["cudnn_version"] == (cudnn_version.split("-")[0] if cudnn_version else None)
