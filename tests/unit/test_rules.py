"""Each rule of the registry, on in-memory images: one layout it catches, one it must not."""

from __future__ import annotations

import pytest

from ldfix.diagnose.context import prepare
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules import BY_CODE, REGISTRY
from ldfix.diagnose.scan import diagnose
from ldfix.image.base import ImageConfig, ImageView
from ldfix.image.memory import MemoryFS
from ldfix.loader.elf import EM_AARCH64
from ldfix.loader.elfwrite import build_shared_object as so

LIBDIR = "/usr/lib/x86_64-linux-gnu"


def image(files: dict[str, bytes], env: dict[str, str] | None = None, links: dict[str, str] | None = None
          ) -> ImageView:
    fs = MemoryFS()
    fs.add_file("/lib64/ld-linux-x86-64.so.2", so("ld-linux-x86-64.so.2"))
    fs.add_file(f"{LIBDIR}/libc.so.6", so("libc.so.6"))
    fs.add_dir("/etc/ld.so.conf.d")
    fs.add_file("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
    for path, data in files.items():
        fs.add_file(path, data)
    for path, target in (links or {}).items():
        fs.add_symlink(path, target)
    return ImageView(fs, ImageConfig(env=env or {}), "memory:test")


def findings(view: ImageView, libs: tuple[str, ...] = ()) -> list[Finding]:
    facts = prepare(view, None)
    report, _ = diagnose(facts, list(libs), dict(view.config.env))
    return list(report.findings)


def codes(view: ImageView, libs: tuple[str, ...] = ()) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings(view, libs):
        out.setdefault(f.code, []).append(f)
    return out


HEALTHY = {f"{LIBDIR}/libcudart.so.12": so("libcudart.so.12")}

CATCHES = {
    "PATH_MISSING": (dict(files={"/opt/cuda/lib64/libcudart.so.12": so("libcudart.so.12")}), ()),
    "LIB_ABSENT": (dict(files=HEALTHY), ("libcublas.so.12",)),
    "WRONG_MAJOR": (dict(files={f"{LIBDIR}/libcusolver.so.11": so("libcusolver.so.11")}), ("libcusolver.so.10",)),
    "STALE_CACHE": (dict(files={"/opt/x/libcudart.so.12": so("libcudart.so.12"),
                                "/etc/ld.so.conf.d/x.conf": b"/opt/x\n"}), ()),
    "NO_DEV_SYMLINK": (dict(files={f"{LIBDIR}/libnvrtc.so.12": so("libnvrtc.so.12")}), ("libnvrtc.so",)),
    "TRANSITIVE": (dict(files={f"{LIBDIR}/libcudnn.so.9": so("libcudnn.so.9", ("libcudnn_graph.so.9",)),
                               "/opt/b/libcudnn_graph.so.9": so("libcudnn_graph.so.9")}), ()),
    "COMPAT": (dict(files={"/usr/local/cuda/compat/libcuda.so.1": so("libcuda.so.1"), **HEALTHY},
                    env={"LD_LIBRARY_PATH": "/usr/local/cuda/compat"}), ()),
    "STUB": (dict(files={"/usr/local/cuda/lib64/stubs/libcuda.so.1": so("libcuda.so.1"), **HEALTHY},
                  env={"LD_LIBRARY_PATH": "/usr/local/cuda/lib64/stubs"}), ()),
    "LDPATH_BAD": (dict(files=HEALTHY, env={"LD_LIBRARY_PATH": f"{LIBDIR}#"}), ()),
    "WRONG_ARCH": (dict(files={f"{LIBDIR}/libcudart.so.12": so("libcudart.so.12", machine=EM_AARCH64)}), ()),
    "NO_DRIVER": (dict(files=HEALTHY), ()),
    "SHADOWED": (dict(files={"/usr/local/cuda/lib64/libcublasLt.so.12": so("libcublasLt.so.12"),
                             "/w/cublas/lib/libcublas.so.12": so("libcublas.so.12", ("libcublasLt.so.12",),
                                                                 runpath="$ORIGIN"),
                             "/w/cublas/lib/libcublasLt.so.12": so("libcublasLt.so.12")},
                      env={"LD_LIBRARY_PATH": "/usr/local/cuda/lib64:/w/cublas/lib"}), ()),
    "VERSION_SKEW": (dict(files={"/w/cudnn/lib/libcudnn.so.9.10.2": so("libcudnn.so.9", ("libcudnn_graph.so.9",)),
                                 f"{LIBDIR}/libcudnn_graph.so.9.1.0": so("libcudnn_graph.so.9")},
                          links={"/w/cudnn/lib/libcudnn.so.9": "libcudnn.so.9.10.2",
                                 f"{LIBDIR}/libcudnn_graph.so.9": "libcudnn_graph.so.9.1.0"},
                          env={"LD_LIBRARY_PATH": "/w/cudnn/lib"}), ()),
}

CATCHES_NOT = {
    "PATH_MISSING": (dict(files=HEALTHY), ()),
    "LIB_ABSENT": (dict(files=HEALTHY), ("libcudart.so.12",)),
    "WRONG_MAJOR": (dict(files={f"{LIBDIR}/libcusolver.so.11": so("libcusolver.so.11")}), ("libcusolver.so.11",)),
    "STALE_CACHE": (dict(files={"/opt/x/libcudart.so.12": so("libcudart.so.12")}), ()),
    "NO_DEV_SYMLINK": (dict(files={f"{LIBDIR}/libnvrtc.so.12": so("libnvrtc.so.12")},
                            links={f"{LIBDIR}/libnvrtc.so": "libnvrtc.so.12"}), ("libnvrtc.so",)),
    "TRANSITIVE": (dict(files={f"{LIBDIR}/libcudnn.so.9": so("libcudnn.so.9", ("libcudnn_graph.so.9",)),
                               f"{LIBDIR}/libcudnn_graph.so.9": so("libcudnn_graph.so.9")}), ()),
    "COMPAT": (dict(files={"/usr/local/cuda/compat/libcuda.so.1": so("libcuda.so.1"), **HEALTHY}), ()),
    "STUB": (dict(files={"/usr/local/cuda/lib64/stubs/libcuda.so": so("libcuda.so"), **HEALTHY}), ()),
    "LDPATH_BAD": (dict(files=HEALTHY, env={"LD_LIBRARY_PATH": f"{LIBDIR}:/usr/local/nvidia/lib64"}), ()),
    "WRONG_ARCH": (dict(files=HEALTHY), ()),
    "NO_DRIVER": (dict(files={f"{LIBDIR}/libcuda.so.1": so("libcuda.so.1"), **HEALTHY}), ()),
    "SHADOWED": (dict(files={"/w/cublas/lib/libcublas.so.12": so("libcublas.so.12", ("libcublasLt.so.12",),
                                                                 runpath="$ORIGIN"),
                             "/w/cublas/lib/libcublasLt.so.12": so("libcublasLt.so.12")},
                      env={"LD_LIBRARY_PATH": "/w/cublas/lib"}), ()),
    "VERSION_SKEW": (dict(files={"/w/cudnn/lib/libcudnn.so.9.10.2": so("libcudnn.so.9", ("libcudnn_graph.so.9",)),
                                 "/w/cudnn/lib/libcudnn_graph.so.9.10.2": so("libcudnn_graph.so.9")},
                          links={"/w/cudnn/lib/libcudnn.so.9": "libcudnn.so.9.10.2",
                                 "/w/cudnn/lib/libcudnn_graph.so.9": "libcudnn_graph.so.9.10.2"},
                          env={"LD_LIBRARY_PATH": "/w/cudnn/lib"}), ()),
}


def test_every_image_rule_has_both_cases() -> None:
    image_rules = {r.code for r in REGISTRY if r.check or r.explain}
    assert image_rules == set(CATCHES) == set(CATCHES_NOT)


@pytest.mark.parametrize("code", sorted(CATCHES))
def test_rule_catches(code: str) -> None:
    layout, libs = CATCHES[code]
    found = codes(image(**layout), libs)  # type: ignore[arg-type]
    assert code in found, found
    assert all(f.message for f in found[code])


@pytest.mark.parametrize("code", sorted(CATCHES_NOT))
def test_rule_catches_not(code: str) -> None:
    layout, libs = CATCHES_NOT[code]
    assert code not in codes(image(**layout), libs)  # type: ignore[arg-type]


def test_severities_follow_root_causes() -> None:
    asked = codes(image(**CATCHES["NO_DEV_SYMLINK"][0]), ("libnvrtc.so",))  # type: ignore[arg-type]
    assert asked["NO_DEV_SYMLINK"][0].severity is Severity.ERROR  # asked for with --lib
    stub = codes(image(**CATCHES["STUB"][0]))  # type: ignore[arg-type]
    assert {f.severity for f in stub["STUB"]} == {Severity.ERROR, Severity.WARNING}  # libcuda into it; the entry
    assert BY_CODE["NO_DRIVER"].severity is Severity.INFO and BY_CODE["SHADOWED"].severity is Severity.WARNING
    optional = codes(image(files=HEALTHY), ("libnvinfer.so.8",))
    assert optional["LIB_ABSENT"][0].severity is Severity.WARNING  # TF-TRT only warns


def test_no_dev_symlink_fix_names_the_directory() -> None:
    found = codes(image(**CATCHES["NO_DEV_SYMLINK"][0]), ("libnvrtc.so",))  # type: ignore[arg-type]
    assert found["NO_DEV_SYMLINK"][0].fix.startswith(f"RUN ln -s libnvrtc.so.12 {LIBDIR}/libnvrtc.so")  # type: ignore[union-attr]


def test_dangling_and_empty_ld_so_conf_d_entries_are_stale_cache_warnings() -> None:
    view = image({"/etc/ld.so.conf.d/cuda.conf": b"/usr/local/cuda-99/lib64\n",
                  "/etc/ld.so.conf.d/empty.conf": b"# nothing here\n", **HEALTHY})
    found = codes(view).get("STALE_CACHE", [])
    assert {f.severity for f in found} == {Severity.WARNING}
    assert any("/usr/local/cuda-99/lib64" in f.message and "does not exist" in f.message for f in found)
    assert any("empty.conf names no directory" in f.message for f in found)
    assert "STALE_CACHE" not in codes(image({"/etc/ld.so.conf.d/x.conf": f"{LIBDIR}\n".encode(), **HEALTHY}))


def test_a_stub_registered_through_ld_so_conf_d_is_stub() -> None:
    view = image({"/usr/local/cuda/lib64/stubs/libcuda.so.1": so("libcuda.so.1"),
                  "/etc/ld.so.conf.d/stubs.conf": b"/usr/local/cuda/lib64/stubs\n", **HEALTHY})
    assert "STUB" in codes(view)


def test_driver_libraries_baked_into_the_image_are_a_warning() -> None:
    view = image({f"{LIBDIR}/libcuda.so.535.104.05": so("libcuda.so.1"), **HEALTHY},
                 links={f"{LIBDIR}/libcuda.so.1": "libcuda.so.535.104.05"})
    (found,) = [f for f in codes(view).get("NO_DRIVER", []) if f.severity is Severity.WARNING]
    assert "libcuda.so.535.104.05" in found.message
    stubs_only = image({"/usr/local/cuda/lib64/stubs/libcuda.so.535.104.05": so("libcuda.so.1"), **HEALTHY})
    assert not [f for f in codes(stubs_only).get("NO_DRIVER", []) if f.severity is Severity.WARNING]


def test_header_directory_on_ld_library_path_is_ldpath_bad() -> None:
    view = image(HEALTHY, env={"LD_LIBRARY_PATH": "/usr/local/cuda/include"})
    assert any("header directory" in f.message for f in codes(view).get("LDPATH_BAD", []))
