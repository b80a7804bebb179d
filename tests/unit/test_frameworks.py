"""Frameworks judged from their own objects, on in-memory images laid out as the real wheels are (the
requester paths, RPATH/RUNPATH values and soname sets are those of torch 2.14.1+cu130, onnxruntime-gpu
1.31.1, nvidia-cublas-cu12 12.9 and nvidia-cudnn-cu12 9.28 as read from PyPI)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ldfix import api
from ldfix.diagnose.finding import Finding
from ldfix.diagnose.scan import ScanOptions
from ldfix.frameworks.detect import Dist
from ldfix.frameworks.requesters import glob, wheel_release
from ldfix.image.base import ImageView
from ldfix.image.pathwalk import Walker
from ldfix.loader.elfwrite import build_shared_object as so
from tests.unit.test_rules import image

SITE = "/usr/local/lib/python3.11/dist-packages"
TORCH_RPATH = ("$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN/../../nvidia/nvshmem/lib:$ORIGIN/../../nvidia/nccl/lib:"
               "$ORIGIN/../../nvidia/cusparselt/lib:$ORIGIN/../../nvidia/cu13/lib:$ORIGIN")
CUDNN9_SUBS = ["libcudnn_graph.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9",
               "libcudnn_heuristic.so.9", "libcudnn_engines_precompiled.so.9",
               "libcudnn_engines_runtime_compiled.so.9"]


def meta(name: str, version: str) -> dict[str, bytes]:
    dist = name.replace("-", "_")
    return {f"{SITE}/{dist}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong text\n".encode()}


def cudnn_wheel(skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    lib = f"{SITE}/nvidia/cudnn/lib"
    files = {f"{lib}/libcudnn.so.9": so("libcudnn.so.9", (), rpath="$ORIGIN")}
    files.update({f"{lib}/{s}": so(s, (), rpath="$ORIGIN") for s in CUDNN9_SUBS if s not in skip})
    return {**files, **meta("nvidia-cudnn-cu12", "9.28.0.42")}


def torch(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    cu13 = f"{SITE}/nvidia/cu13/lib"
    return {
        **meta("torch", "2.14.1"),
        f"{SITE}/torch/version.py": b"__version__ = '2.14.1+cu130'\ncuda: Optional[str] = '13.0'\n",
        f"{SITE}/torch/lib/libtorch_cuda.so": so("libtorch_cuda.so", ("libcudart.so.13", "libcublas.so.13",
                                                                      "libcudnn.so.9"), rpath=TORCH_RPATH),
        f"{cu13}/libcudart.so.13": so("libcudart.so.13"),
        f"{cu13}/libcublas.so.13": so("libcublas.so.13", ("libcublasLt.so.13",), rpath="$ORIGIN"),
        f"{cu13}/libcublasLt.so.13": so("libcublasLt.so.13"),
        **meta("nvidia-cublas", "13.1.1.3"), **meta("nvidia-cuda-runtime", "13.0.96"),
        **cudnn_wheel(), **(extra or {}),
    }


def scan(view: ImageView) -> Any:
    report, _ = api.scan_view(view, None, ScanOptions())
    return report


def fw_findings(report: Any, code: str | None = None) -> list[Finding]:
    return [f for f in report.findings if f.framework and (code is None or f.code == code)]


def test_a_healthy_torch_install_resolves_through_its_own_rpath_and_is_no_global_error() -> None:
    report = scan(image(torch()))
    assert [f.code for f in report.findings if f.severity.value == "error"] == []
    (entry,) = report.frameworks
    assert (entry["framework"], entry["version"], entry["built_for_cuda"]) == ("torch", "2.14.1", "13.0")
    assert entry["location"] == f"{SITE}/torch"
    libs = {(lib["soname"], lib["how"]): lib for lib in entry["libraries"]}
    cudart = libs[("libcudart.so.13", "needed")]
    assert cudart["status"] == "resolved" and cudart["via"] == "rpath"
    assert cudart["requester"] == f"{SITE}/torch/lib/libtorch_cuda.so"
    assert cudart["realpath"] == f"{SITE}/nvidia/cu13/lib/libcudart.so.13"
    graph = libs[("libcudnn_graph.so.9", "dlopen")]  # cuDNN's sub-libraries, from libcudnn.so.9 itself
    assert graph["requester"] == f"{SITE}/nvidia/cudnn/lib/libcudnn.so.9" and graph["status"] == "resolved"
    assert "libcudart.so.13" not in {lib.soname for lib in report.libraries}, "no probe with no RPATH judges it"
    assert report.fix is None


def test_onnxruntime_provider_without_rpath_cannot_find_the_wheels_and_gets_their_directory() -> None:
    cu13 = f"{SITE}/nvidia/cu13/lib"
    files = {**meta("onnxruntime-gpu", "1.31.1"),
             f"{SITE}/onnxruntime/capi/build_and_package_info.py": b"cuda_version = '13.0'\n",
             f"{SITE}/onnxruntime/capi/libonnxruntime_providers_cuda.so": so(
                 "libonnxruntime_providers_cuda.so", ("libcublasLt.so.13", "libcublas.so.13", "libcudart.so.13",
                                                      "libcuda.so.1")),
             f"{cu13}/libcudart.so.13": so("libcudart.so.13"),
             f"{cu13}/libcublas.so.13": so("libcublas.so.13", ("libcublasLt.so.13",), rpath="$ORIGIN"),
             f"{cu13}/libcublasLt.so.13": so("libcublasLt.so.13"), **meta("nvidia-cublas", "13.1.1.3")}
    report = scan(image(files))
    missing = fw_findings(report, "PATH_MISSING")
    assert {f.soname for f in missing} == {"libcublasLt.so.13", "libcublas.so.13", "libcudart.so.13"}
    assert all(f.framework == "onnxruntime" and "libonnxruntime_providers_cuda.so" in f.message for f in missing)
    assert report.frameworks[0]["built_for_cuda"] == "13.0"
    assert report.fix is not None and report.fix.ld_library_path_add == (cu13,)


def test_ld_library_path_beats_a_wheels_runpath_shadowed_and_version_skew() -> None:
    """A pip libcublas.so.12 (RUNPATH $ORIGIN) binds an older system libcublasLt.so.12 first on LD_LIBRARY_PATH."""
    cu12 = f"{SITE}/nvidia/cublas/lib"
    files = {**meta("onnxruntime-gpu", "1.22.0"),
             f"{SITE}/onnxruntime/capi/libonnxruntime_providers_cuda.so": so(
                 "libonnxruntime_providers_cuda.so", ("libcublas.so.12",), runpath=cu12),
             f"{cu12}/libcublas.so.12": so("libcublas.so.12", ("libcublasLt.so.12",), runpath="$ORIGIN"),
             f"{cu12}/libcublasLt.so.12": so("libcublasLt.so.12"), **meta("nvidia-cublas-cu12", "12.9.1.4"),
             "/usr/local/cuda/lib64/libcublasLt.so.12.8.4.1": so("libcublasLt.so.12")}
    view = image(files, env={"LD_LIBRARY_PATH": "/usr/local/cuda/lib64"},
                 links={"/usr/local/cuda/lib64/libcublasLt.so.12": "libcublasLt.so.12.8.4.1"})
    report = scan(view)
    (shadow,) = fw_findings(report, "SHADOWED")
    assert shadow.soname == "libcublasLt.so.12" and "/usr/local/cuda/lib64" in shadow.message
    (skew,) = fw_findings(report, "VERSION_SKEW")
    assert "12.8.4.1" in skew.message and "12.9.1.4" in skew.message


def test_cudnn_sub_library_from_another_release_is_version_skew() -> None:
    files = torch({"/usr/lib/x86_64-linux-gnu/libcudnn_graph.so.9.1.0": so("libcudnn_graph.so.9")})
    files = {k: v for k, v in files.items() if not k.endswith("nvidia/cudnn/lib/libcudnn_graph.so.9")}
    view = image(files, links={"/usr/lib/x86_64-linux-gnu/libcudnn_graph.so.9": "libcudnn_graph.so.9.1.0"})
    report = scan(view)
    (skew,) = fw_findings(report, "VERSION_SKEW")
    assert skew.framework == "torch" and "9.1.0" in skew.message and "9.28.0.42" in skew.message


def test_a_framework_dlopen_from_an_object_whose_runpath_lacks_the_wheel_is_the_frameworks_defect() -> None:
    """TF 2.21 dlopens cuSOLVER from libtensorflow_framework.so.2, whose RUNPATH lacks nvidia/cusolver/lib."""
    tf = f"{SITE}/tensorflow"
    runpath = "$ORIGIN/../nvidia/cudnn/lib:$ORIGIN/../nvidia/cublas/lib:$ORIGIN"
    files = {**meta("tensorflow", "2.21.0"),
             f"{tf}/libtensorflow_framework.so.2": so("libtensorflow_framework.so.2", (), runpath=runpath),
             f"{SITE}/nvidia/cusolver/lib/libcusolver.so.11": so("libcusolver.so.11"),
             **meta("nvidia-cusolver-cu12", "11.7.5.82")}
    report = scan(image(files))
    found = [f for f in fw_findings(report, "PATH_MISSING") if f.soname == "libcusolver.so.11"]
    assert found and found[0].framework == "tensorflow" and "libtensorflow_framework.so.2" in found[0].message
    lib = next(x for x in report.frameworks[0]["libraries"] if x["soname"] == "libcusolver.so.11")
    assert lib["how"] == "dlopen" and lib["status"] == "unresolved"


JAX12 = {"cuda_runtime": ["libcudart.so.12"], "cuda_nvrtc": ["libnvrtc.so.12"],
         "cublas": ["libcublas.so.12", "libcublasLt.so.12"], "nccl": ["libnccl.so.2"], "cuda_cupti": ["libcupti.so.12"],
         "cusparse": ["libcusparse.so.12"], "cusolver": ["libcusolver.so.11"], "cufft": ["libcufft.so.11"]}


def test_jax_preloads_the_wheel_libraries_by_absolute_path_then_its_plugin_dlopens_them() -> None:
    """jax_plugins/cuda/__init__.py loads nvidia/<pkg>/lib/<lib> by path; xla_cuda_plugin.so (no CUDA
    DT_NEEDED, DT_RPATH into the wheels) then dlopens them by soname."""
    plugin = f"{SITE}/jax_plugins/xla_cuda12"
    files = {**meta("jax-cuda12-plugin", "0.10.2"), **meta("jax", "0.10.2"),
             f"{plugin}/xla_cuda_plugin.so": so("xla_cuda_plugin.so", ("libc.so.6",),
                                                rpath="$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN/../../nvidia/nccl/lib"),
             **cudnn_wheel()}
    files.update({f"{SITE}/nvidia/{pkg}/lib/{lib}": so(lib) for pkg, libs in JAX12.items() for lib in libs})
    report = scan(image(files))
    assert not [f for f in fw_findings(report) if f.severity.value == "error"], fw_findings(report)
    libs = {lib["soname"]: lib for lib in report.frameworks[0]["libraries"]}
    cudart = libs["libcudart.so.12"]
    assert cudart["how"] == "preload" and cudart["realpath"] == f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12"
    assert libs["libcudnn_graph.so.9"]["requester"] == f"{SITE}/nvidia/cudnn/lib/libcudnn.so.9"
    missing = scan(image({k: v for k, v in files.items() if "cudnn" not in k}))  # jax[cuda12] without cuDNN
    assert {f.soname for f in fw_findings(missing) if f.severity.value == "error"} == {"libcudnn.so.9"}
    assert fw_findings(missing)[0].code == "LIB_ABSENT" and "nvidia-cudnn-cu12" in (fw_findings(missing)[0].fix or "")


def test_detection_reports_broken_metadata_and_each_python_once() -> None:
    other = "/opt/venv/lib/python3.12/site-packages"
    files = {**torch(), f"{SITE}/tensorflow-2.21.0.dist-info/RECORD": b"",
             f"{other}/torch-2.9.1.dist-info/METADATA": b"Name: torch\nVersion: 2.9.1\n\n",
             f"{other}/torch/lib/libtorch_cuda.so": so("libtorch_cuda.so", ("libcudart.so.12",),
                                                       rpath="$ORIGIN/../../nvidia/cuda_runtime/lib"),
             f"{other}/nvidia/cuda_runtime/lib/libcudart.so.12": so("libcudart.so.12")}
    report = scan(image(files))
    assert sorted((e["framework"], e["version"], e["location"]) for e in report.frameworks) == [
        ("torch", "2.14.1", f"{SITE}/torch"), ("torch", "2.9.1", f"{other}/torch")]
    assert any("tensorflow-2.21.0.dist-info has no METADATA" in n for n in report.notes)


def test_glob_and_wheel_release() -> None:
    view = image(torch())
    walker = Walker(view.fs)
    assert glob(walker, SITE, "nvidia/*/lib") == [f"{SITE}/nvidia/cu13/lib", f"{SITE}/nvidia/cudnn/lib"]
    wheels = (Dist("nvidia-cudnn-cu12", "9.28.0.42", SITE, ""),)
    assert wheel_release(f"{SITE}/nvidia/cudnn/lib/libcudnn.so.9", wheels) == "9.28.0.42"
    assert wheel_release("/usr/lib/x86_64-linux-gnu/libcudnn_graph.so.9.1.0", wheels) == "9.1.0"


@given(st.lists(st.sampled_from(["Name: torch", "Version: 2.1", "Summary: x", "", " ", "\r", "  cont",
                                 "Name: other", "Key:v\x0cX: y", "Requires-Dist: a"]), max_size=12))
def test_metadata_headers_end_at_the_first_blank_line_however_the_text_is_cut(lines: list[str]) -> None:
    """_headers cuts the text at its first empty line before splitting it: the same headers as reading every
    line up to the first blank one."""
    from ldfix.frameworks import detect

    text = "\n".join(lines)
    assert detect._headers(text) == detect._header_lines(text)


def test_a_later_scan_of_the_same_image_takes_package_metadata_from_its_snapshot(tmp_path: Any,
                                                                               monkeypatch: Any) -> None:
    """The dists an image's first scan read are kept beside its snapshot: a later scan of it reads no METADATA
    and reports the same frameworks, notes and findings; an image without a snapshot key reads them again."""
    monkeypatch.setenv("LDFIX_CACHE_DIR", str(tmp_path))
    files = {**torch(), f"{SITE}/tensorflow-2.21.0.dist-info/RECORD": b""}

    def scanned(key: str | None) -> tuple[Any, int]:
        view = image(files)
        view.snapshot_key = key
        reads = []
        plain = view.fs.read

        def read(path: str, offset: int, size: int) -> bytes:
            if path.endswith("/METADATA"):
                reads.append(path)
            return plain(path, offset, size)

        view.fs.read = read  # type: ignore[method-assign]
        report = scan(view)
        return (report.frameworks, report.notes, report.findings), len(reads)

    first, first_reads = scanned("k1")
    later, later_reads = scanned("k1")
    assert first_reads >= 4 and later_reads == 0
    assert later == first and any("has no METADATA" in n for n in later[1])
    assert scanned(None) == (first, first_reads)
