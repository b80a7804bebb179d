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
                     "nvidia-cusparse", "nvidia-nvjitlink", "nvidia-cuda-nvrtc", "nvidia-cufile", "nvidia-cusolver",
                     "nvidia-cuda-cupti==13.0.85"):
            install(spec, root, libraries_only)
        cudnn = root / SITE / "nvidia/cudnn/lib"
        with open(cudnn / "libcudnn.so.9", "rb") as fh:
            data = fh.read()
        info = read_elf(lambda o, n: data[o:o + n])
        subs = ("libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9")
        (cudnn / ".ldfix-judge.so").write_bytes(build_shared_object(None, subs, rpath=info.rpath,
                                                                     runpath=info.runpath))

    image = build_image("ldfix-test/fw:torch-full", full, cuda_env("13.0.0"), "torch-2.14.1-full-v2")
    report = ldfix(image)
    assert [f for f in report["findings"] if f["severity"] == "error"] == []
    assert agree(image, report, "torch") >= 20
    libs = by_requester(report, "torch")[f"{S}/nvidia/cudnn/lib/libcudnn.so.9"]
    real = real_list(image, f"{S}/nvidia/cudnn/lib/.ldfix-judge.so")
    for sub in ("libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"):
        assert real[sub] == libs[sub]["path"], (sub, real, libs[sub])


def dlopen_truth(image: str, requester: str, names: list[str], tmp: Path,
                 env: dict[str, str] | None = None) -> dict[str, str | None]:
    """What `dlopen(name)` from REQUESTER opens, by the image's own loader: a probe object carrying the
    requester's DT_RPATH / DT_RUNPATH with the names as its DT_NEEDED, bind-mounted into the requester's
    directory (so $ORIGIN is the same) and listed by ld.so in trace mode."""
    data = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", image, requester],
                          capture_output=True, timeout=300, check=True).stdout
    info = read_elf(lambda o, n: data[o:o + n])
    probe = tmp / f"probe-{abs(hash((requester, tuple(names))))}.so"
    probe.write_bytes(build_shared_object(None, tuple(names), rpath=info.rpath, runpath=info.runpath))
    inside = f"{os.path.dirname(requester)}/.ldfix-judge.so"
    args = ["docker", "run", "--rm", "--network", "none", "-v", f"{probe}:{inside}:ro", "--entrypoint", LOADER,
            "-e", "LD_TRACE_LOADED_OBJECTS=1"]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    proc = subprocess.run([*args, image, inside], capture_output=True, text=True, timeout=120)
    out: dict[str, str | None] = {}
    for line in proc.stdout.splitlines():
        name, sep, rest = line.strip().partition(" => ")
        if sep and name in names:
            out[name] = None if rest.startswith("not found") else rest.rsplit(" (", 1)[0]
    assert set(out) == set(names), (proc.stdout, proc.stderr)
    return out


def dlopens_agree(image: str, report: dict[str, Any], framework: str, tmp: Path,
                  env: dict[str, str] | None = None) -> int:
    """Every name ldfix says a requester dlopens resolves, by the image's loader, to the file ldfix names
    (or to nothing where ldfix says it is missing); returns how many were compared."""
    compared = 0
    for requester, libs in by_requester(report, framework).items():
        opened = {s: lib for s, lib in libs.items() if lib["how"] == "dlopen" and lib["status"] != "runtime-provided"}
        if not opened or requester.endswith("__init__.py"):
            continue
        real = dlopen_truth(image, requester, sorted(opened), tmp, env)
        for soname, lib in opened.items():
            assert real[soname] == lib["path"], (requester, soname, real[soname], lib)
            compared += 1
    return compared


TF = "tensorflow==2.21.0"
TF_CUDA = ("nvidia-cublas-cu12", "nvidia-cuda-cupti-cu12", "nvidia-cuda-nvrtc-cu12", "nvidia-cuda-runtime-cu12",
           "nvidia-cudnn-cu12", "nvidia-cufft-cu12", "nvidia-curand-cu12", "nvidia-cusolver-cu12",
           "nvidia-cusparse-cu12", "nvidia-nccl-cu12", "nvidia-nvjitlink-cu12")
PLAIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def _tf(root: Path, cuda: bool) -> None:
    install(TF, root, lambda n: (n.startswith("tensorflow/") and ".so" in n.rsplit("/", 1)[-1])
            or n.endswith("build_info.py"))
    for spec in TF_CUDA if cuda else ():
        install(spec, root, libraries_only)


@pytest.mark.frameworks_full
def test_tensorflow_and_cuda_reports_its_own_runpath_defect_and_the_loader_agrees(tmp_path: Path) -> None:
    image = build_image("ldfix-test/fw:tf-and-cuda", lambda r: _tf(r, True), PLAIN_ENV, "tf-2.21.0-and-cuda-v1")
    report = ldfix(image)
    framework = f"{S}/tensorflow/libtensorflow_framework.so.2"
    errors = {f["soname"]: f for f in report["findings"] if f["severity"] == "error"}
    assert set(errors) == {"libcurand.so.10", "libcusolver.so.11"}
    for f in errors.values():
        assert f["code"] == "PATH_MISSING" and f["framework"] == "tensorflow" and "packaging defect" in f["message"]
        assert f["evidence"][0].startswith(f"{framework} DT_RUNPATH")
    (entry,) = [e for e in report["frameworks"] if e["framework"] == "tensorflow"]
    assert entry["version"] == "2.21.0" and entry["built_for_cuda"] == "12.5.1"
    assert dlopens_agree(image, report, "tensorflow", tmp_path) >= 8  # curand and cusolver: not found either
    fix = report["fix"]
    assert fix["verified"] is True and sorted(fix["ld_library_path_add"]) == [f"{S}/nvidia/curand/lib",
                                                                            f"{S}/nvidia/cusolver/lib"]
    env = {"LD_LIBRARY_PATH": ":".join(fix["ld_library_path_add"])}
    fixed = ldfix(image, "--env", f"LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']}")
    assert not [f for f in fixed["findings"] if f["severity"] == "error"]
    assert dlopens_agree(image, fixed, "tensorflow", tmp_path, env) >= 8


@pytest.mark.frameworks_full
def test_tensorflow_without_its_cuda_wheels_names_each_library_and_the_extra(tmp_path: Path) -> None:
    image = build_image("ldfix-test/fw:tf-plain", lambda r: _tf(r, False), PLAIN_ENV, "tf-2.21.0-plain-v1")
    report = ldfix(image)
    absent = {f["soname"]: f for f in report["findings"] if f["code"] == "LIB_ABSENT"}
    assert set(absent) == {"libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcufft.so.11",
                           "libcurand.so.10", "libcusolver.so.11", "libcusparse.so.12", "libcudnn.so.9"}
    assert all("pip install 'tensorflow[and-cuda]==2.21.0'" in f["fix"] for f in absent.values())
    assert "pip install nvidia-cudnn-cu12" in absent["libcudnn.so.9"]["fix"]
    assert dlopens_agree(image, report, "tensorflow", tmp_path) == 8  # the loader finds none of them


JAX_CUDA = ("nvidia-cublas-cu12", "nvidia-cuda-cupti-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cufft-cu12",
            "nvidia-cusolver-cu12", "nvidia-cusparse-cu12", "nvidia-nccl-cu12", "nvidia-nvjitlink-cu12",
            "nvidia-cuda-nvrtc-cu12", "nvidia-nvshmem-cu12")


def _jax(root: Path, cudnn: bool) -> None:
    install("jax==0.10.2", root, lambda n: False)
    install("jaxlib==0.10.2", root, lambda n: (n.endswith(".so") and "/mlir" not in n) or n.endswith("version.py"))
    install("jax-cuda12-plugin==0.10.2", root)
    install("jax-cuda12-pjrt==0.10.2", root)
    for spec in (*JAX_CUDA, *(("nvidia-cudnn-cu12",) if cudnn else ())):
        install(spec, root, libraries_only)


@pytest.mark.frameworks_full
def test_jax_without_cudnn_names_it_and_the_wheel_fixes_it(tmp_path: Path) -> None:
    image = build_image("ldfix-test/fw:jax-no-cudnn", lambda r: _jax(r, False), PLAIN_ENV, "jax-0.10.2-no-cudnn-v1")
    report = ldfix(image)
    (f,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert f["code"] == "LIB_ABSENT" and f["soname"] == "libcudnn.so.9" and f["framework"] == "jax"
    assert "xla_cuda_plugin.so" in f["message"] and "pip install nvidia-cudnn-cu12" in f["fix"]
    assert "pip install 'jax[cuda12]==0.10.2'" in f["fix"]
    assert dlopens_agree(image, report, "jax", tmp_path) >= 8  # libcudnn.so.9: not found by the loader either
    fixed = build_image("ldfix-test/fw:jax-cudnn", lambda r: _jax(r, True), PLAIN_ENV, "jax-0.10.2-cudnn-v1")
    after = ldfix(fixed)
    assert not [f for f in after["findings"] if f["severity"] == "error"]
    assert dlopens_agree(fixed, after, "jax", tmp_path) >= 9
    cudnn = by_requester(after, "jax")[f"{S}/jax_plugins/xla_cuda12/xla_cuda_plugin.so"]["libcudnn.so.9"]
    assert cudnn["path"] == f"{S}/jax_plugins/xla_cuda12/../../nvidia/cudnn/lib/libcudnn.so.9"


CUPY_CUDA = ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cufft-cu12", "nvidia-curand-cu12",
             "nvidia-cusolver-cu12", "nvidia-cusparse-cu12", "nvidia-nvjitlink-cu12", "nvidia-nccl-cu12")


def _cupy(root: Path, nvrtc: bool) -> None:
    install("cupy-cuda12x==14.2.0", root, lambda n: ".so" in n.rsplit("/", 1)[-1]
            or (n.endswith(("__init__.py", "_version.py")) and n.count("/") <= 2))
    for spec in (*CUPY_CUDA, *(("nvidia-cuda-nvrtc-cu12",) if nvrtc else ())):
        install(spec, root, libraries_only)


@pytest.mark.frameworks_full
def test_cupy_without_nvrtc_names_the_module_and_the_wheel_fixes_it(tmp_path: Path) -> None:
    image = build_image("ldfix-test/fw:cupy-no-nvrtc", lambda r: _cupy(r, False), PLAIN_ENV, "cupy-14.2.0-no-nvrtc-v2")
    report = ldfix(image)
    (f,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert f["code"] == "LIB_ABSENT" and f["soname"] == "libnvrtc.so.12" and f["framework"] == "cupy"
    assert "jitify" in f["message"] and "pip install nvidia-cuda-nvrtc-cu12" in f["fix"]
    assert "pip install 'cupy-cuda12x[ctk]==14.2.0'" in f["fix"]
    jitify = next(r for r in by_requester(report, "cupy") if "jitify" in r)
    assert real_list(image, jitify)["libnvrtc.so.12"] is None  # the loader agrees
    assert agree(image, report, "cupy") >= 2
    fixed = build_image("ldfix-test/fw:cupy", lambda r: _cupy(r, True), PLAIN_ENV, "cupy-14.2.0-nvrtc-v1")
    after = ldfix(fixed)
    assert not [f for f in after["findings"] if f["severity"] == "error"]
    # CuPy's Python code preloads the wheel's NVRTC by absolute path; jitify's DT_NEEDED then binds that object
    (pre,) = [lib for libs in by_requester(after, "cupy").values() for s, lib in libs.items() if s == "libnvrtc.so.12"]
    assert pre["how"] == "preload" and pre["path"] == f"{S}/nvidia/cuda_nvrtc/lib/libnvrtc.so.12"
    assert real_list(fixed, jitify)["libnvrtc.so.12"] is None  # on its own, jitify still finds nothing
    assert pre["path"] in preload_then(fixed, [pre["path"], jitify], tmp_path)  # and nothing is missing


def preload_then(image: str, paths: list[str], tmp: Path) -> list[str]:
    """The objects the image's loader maps when PATHS are loaded in that order (a preload by absolute path,
    then the module), none of their needs missing: a probe whose DT_NEEDED are those paths, listed by ld.so in
    trace mode (an absolute DT_NEEDED prints as `PATH (ADDRESS)`; a need an object already answers, not at all)."""
    probe = tmp / "preload-probe.so"
    probe.write_bytes(build_shared_object(None, tuple(paths)))
    args = ["docker", "run", "--rm", "--network", "none", "-v", f"{probe}:/tmp/.ldfix-judge.so:ro",
            "--entrypoint", LOADER, "-e", "LD_TRACE_LOADED_OBJECTS=1", image, "/tmp/.ldfix-judge.so"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.stdout and "not found" not in proc.stdout, (proc.stdout, proc.stderr)
    out = []
    for line in proc.stdout.splitlines():
        _, _, rest = line.strip().rpartition(" => ")
        out.append(rest.rsplit(" (", 1)[0])
    return out


@pytest.mark.frameworks_full
def test_paddle_asks_for_development_names_that_a_runtime_image_lacks(tmp_path: Path) -> None:
    def paddle(root: Path) -> None:
        install("paddlepaddle-gpu==2.6.2", root, lambda n: (n.startswith("paddle/libs/") and ".so" in n)
                or n in ("paddle/base/libpaddle.so", "paddle/version/__init__.py"))

    image = build_image("ldfix-test/fw:paddle", paddle, PLAIN_ENV, "paddle-2.6.2-v1")
    report = ldfix(image)
    (entry,) = [e for e in report["frameworks"] if e["framework"] == "paddle"]
    assert entry["version"] == "2.6.2" and entry["built_for_cuda"] == "11.8"
    missing = {f["soname"] for f in report["findings"] if f.get("framework") == "paddle" and f["severity"] == "error"}
    assert {"libcudnn.so", "libcublas.so", "libnccl.so"} <= missing
    assert dlopens_agree(image, report, "paddle", tmp_path) == 9  # none found by the loader either


@pytest.mark.frameworks_full
def test_torch_with_another_cublaslt_first_on_ld_library_path_is_judged_as_its_loader_binds(tmp_path: Path) -> None:
    """nvidia-cublas 13.0.0.19's libcublas.so.13 carries DT_RUNPATH $ORIGIN (13.10 carries DT_RPATH): with
    another release's libcublasLt.so.13 first on LD_LIBRARY_PATH, what each requester binds is what the
    image's loader binds, and a skew between cuBLAS and cuBLASLt is named with the framework."""
    other = "/opt/other/lib"

    def build(root: Path) -> None:
        install("torch==2.14.1", root, lambda n: n.startswith("torch/lib/") or n == "torch/version.py")
        for spec in ("nvidia-cuda-runtime==13.0.96", "nvidia-cublas==13.0.0.19", "nvidia-cudnn-cu13",
                     "nvidia-nccl-cu13", "nvidia-cusparselt-cu13", "nvidia-nvshmem-cu13", "nvidia-cufft",
                     "nvidia-curand", "nvidia-cusparse", "nvidia-nvjitlink", "nvidia-cuda-nvrtc", "nvidia-cufile",
                     "nvidia-cusolver", "nvidia-cuda-cupti==13.0.85"):
            install(spec, root, libraries_only)
        install("nvidia-cublas==13.10.0.20", root, lambda n: n.endswith("libcublasLt.so.13"), site="opt/other-wheel")
        (root / other.lstrip("/")).mkdir(parents=True)
        (root / "opt/other-wheel/nvidia/cu13/lib/libcublasLt.so.13").rename(root / other.lstrip("/") / "libcublasLt.so.13")

    env = {**cuda_env("13.0.0"), "LD_LIBRARY_PATH": f"{other}:/usr/local/nvidia/lib:/usr/local/nvidia/lib64"}
    image = build_image("ldfix-test/fw:torch-other-cublaslt", build, env, "torch-2.14.1-other-cublaslt-v1")
    report = ldfix(image)
    assert agree(image, report, "torch") >= 20  # every DT_NEEDED, cuBLAS's own cuBLASLt included
    wheel = f"{S}/torch/lib/../../nvidia/cu13/lib"
    cuda = by_requester(report, "torch")[f"{S}/torch/lib/libtorch_cuda.so"]
    # libtorch_cuda.so names cuBLASLt itself, through its DT_RPATH (which outranks LD_LIBRARY_PATH): the
    # wheel's copy is loaded before cuBLAS asks for it, so the other release is never mapped by torch
    assert cuda["libcublasLt.so.13"]["path"] == f"{wheel}/libcublasLt.so.13" and cuda["libcublasLt.so.13"]["via"] == "rpath"
    assert not [f for f in report["findings"] if f["code"] in ("VERSION_SKEW", "SHADOWED") or f["severity"] == "error"]
    # while cuBLAS 13.0's own DT_RUNPATH loses to LD_LIBRARY_PATH: loaded alone, it binds the other release
    assert real_list(image, f"{S}/nvidia/cu13/lib/libcublas.so.13")["libcublasLt.so.13"] == f"{other}/libcublasLt.so.13"
