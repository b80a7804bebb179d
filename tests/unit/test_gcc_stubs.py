"""The model on libraries a real toolchain wrote: ELF facts read back from gcc output, and gcc-built layouts
(RPATH chains, RUNPATH that is not inherited, LD_LIBRARY_PATH between them, the cache) resolved by the model
exactly as the real loader resolves them in a chroot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ldfix.loader.elf import read_elf
from tests.layouts import Layout, materialize, run_model, run_real
from tests.stubs import compile_stub, gcc_available

pytestmark = pytest.mark.skipif(not gcc_available(), reason="gcc is not installed")


def _info(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        def read(off: int, n: int) -> bytes:
            fh.seek(off)
            return fh.read(n)
        return read_elf(read)


@pytest.mark.parametrize(("soname", "needed", "rpath", "runpath"), [
    ("libcudnn.so.8", ("libcudnn_ops_infer.so.8",), None, None),
    ("libcublas.so.12", ("libcublasLt.so.12", "libm.so.6"), "$ORIGIN", None),
    ("libtorch_cuda.so", ("libcudart.so.12", "libcudnn.so.9"), None, "$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN"),
    (None, (), None, "/opt/x"),
])
def test_elf_facts_of_gcc_output(tmp_path: Path, soname: str | None, needed: tuple[str, ...], rpath: str | None,
                                 runpath: str | None) -> None:
    out = compile_stub(tmp_path / "lib.so", soname, needed, rpath=rpath, runpath=runpath)
    info = _info(out)
    assert info.soname == soname
    assert list(info.needed) == [*needed, "libc.so.6"]
    assert info.rpath == rpath
    assert info.runpath == runpath


# Each case: files {path: (soname, needed, rpath, runpath)}, the probe's (needed, rpath, runpath), env, conf dirs.
CASES: dict[str, tuple[dict[str, tuple[str, tuple[str, ...], str | None, str | None]],
                       tuple[tuple[str, ...], str | None, str | None], dict[str, str], list[str]]] = {
    "rpath-chain-reaches-grandchild": (
        {"/opt/a/libA.so.1": ("libA.so.1", ("libB.so.1",), None, None),
         "/opt/p/libB.so.1": ("libB.so.1", (), None, None)},
        (("libA.so.1",), "/opt/a:/opt/p", None), {}, []),
    "runpath-not-inherited": (
        {"/opt/a/libA.so.1": ("libA.so.1", ("libB.so.1",), None, None),
         "/opt/p/libB.so.1": ("libB.so.1", (), None, None)},
        (("libA.so.1",), None, "/opt/a:/opt/p"), {}, []),
    "ld-library-path-beats-runpath": (
        {"/opt/a/libA.so.1": ("libA.so.1", (), None, None),
         "/opt/b/libA.so.1": ("libA.so.1", (), None, None)},
        (("libA.so.1",), None, "/opt/a"), {"LD_LIBRARY_PATH": "/opt/b"}, []),
    "rpath-beats-ld-library-path": (
        {"/opt/a/libA.so.1": ("libA.so.1", (), None, None),
         "/opt/b/libA.so.1": ("libA.so.1", (), None, None)},
        (("libA.so.1",), "/opt/a", None), {"LD_LIBRARY_PATH": "/opt/b"}, []),
    "origin-runpath-of-the-library-itself": (
        {"/opt/w/nvidia/cublas/lib/libcublas.so.12": ("libcublas.so.12", ("libcublasLt.so.12",), None, "$ORIGIN"),
         "/opt/w/nvidia/cublas/lib/libcublasLt.so.12": ("libcublasLt.so.12", (), None, None)},
        (("libcublas.so.12",), None, "/opt/w/nvidia/cublas/lib"), {}, []),
    "cache-after-ldconfig": (
        {"/opt/cuda/lib64/libcudart.so.12": ("libcudart.so.12", (), None, None)},
        (("libcudart.so.12",), None, None), {}, ["/opt/cuda/lib64"]),
    "empty-entry-is-the-working-directory": (
        {"/work/libA.so.1": ("libA.so.1", (), None, None)},
        (("libA.so.1",), None, None), {"LD_LIBRARY_PATH": "/nowhere:"}, []),
    "trailing-hash-is-part-of-the-name": (
        {"/opt/a/libA.so.1": ("libA.so.1", (), None, None)},
        (("libA.so.1",), None, None), {"LD_LIBRARY_PATH": "/opt/a#"}, []),
}


@pytest.mark.root
@pytest.mark.parametrize("name", sorted(CASES))
def test_gcc_layout_model_equals_real_loader(name: str, tmp_path: Path) -> None:
    files, (needed, rpath, runpath), env, conf_dirs = CASES[name]
    build = tmp_path / "build"
    lay = Layout(seed=0, env=dict(env), cwd="/work", dirs=["/work", "/etc/ld.so.conf.d"])
    with open(os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6"), "rb") as fh:
        lay.files["/lib/x86_64-linux-gnu/libc.so.6"] = fh.read()
    for path, (soname, deps, rp, rn) in files.items():
        lay.files[path] = compile_stub(build / path.lstrip("/"), soname, deps, rpath=rp, runpath=rn).read_bytes()
    lay.probe = compile_stub(build / "probe.so", None, needed, rpath=rpath, runpath=runpath).read_bytes()
    lay.conf["/etc/ld.so.conf"] = "".join(f"{d}\n" for d in conf_dirs)
    root = str(tmp_path / "root")
    materialize(lay, root)
    real, real_fatal = run_real(root, lay)
    _, model, model_fatal = run_model(root, lay)
    assert model == real, lay.describe()
    assert model_fatal == real_fatal
    assert any(path for _, path in real), "each case loads something"
