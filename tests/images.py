"""Test images built locally (no registry here): a debootstrap Debian bookworm minbase image, cached by
a hash of its recipe, and CUDA-layout replicas made from it with stub libraries written by ldfix's ELF
writer (any SONAME/NEEDED), imported with `docker import`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ldfix.loader.elfwrite import build_shared_object
from tests.need import require_docker, require_root
from tests.stubs import compile_stub, host_glibc_root

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CACHE = Path(os.environ.get("LDFIX_TEST_CACHE", Path.home() / ".cache" / "ldfix-tests"))


def _sh(*args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(args), check=True, capture_output=True, **kw)  # type: ignore[call-overload]


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def debian_rootfs() -> Path:
    """A debootstrap'ed bookworm minbase tree, cached across runs by the recipe's hash."""
    recipe = (FIXTURES / "debian-bookworm.recipe").read_bytes()
    digest = hashlib.sha256(recipe).hexdigest()[:16]
    target = CACHE / f"debian-{digest}"
    if (target / "etc" / "debian_version").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=CACHE, prefix="debootstrap-"))
    _sh("debootstrap", "--variant=minbase", "bookworm", str(work / "root"))
    if target.exists():
        shutil.rmtree(target)
    (work / "root").rename(target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def build_image(tag: str, customize: Callable[[Path], None], env: dict[str, str], recipe_key: str) -> str:
    """`docker import` a copy of the Debian tree after `customize` changed it; reused when the tag (which
    includes a hash of `recipe_key`) exists."""
    require_docker()
    require_root()
    digest = hashlib.sha256((recipe_key + (FIXTURES / "debian-bookworm.recipe").read_text()).encode()).hexdigest()[:12]
    full = f"{tag}-{digest}"
    if image_exists(full):
        return full
    base = debian_rootfs()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        _sh("cp", "-a", str(base), str(root))
        customize(root)
        _import(root, env, full)
    return full


def build_tiny_image(tag: str, libs: dict[str, tuple[str, tuple[str, ...], str | None, str | None]],
                     env: dict[str, str], conf: str = "") -> str:
    """A shell-less glibc image: this machine's loader and libc plus gcc-compiled stubs, `libs` mapping an image
    path to (soname, needed, rpath, runpath). `conf` becomes /etc/ld.so.conf and the cache is made from it."""
    require_docker()
    require_root()
    key = repr((sorted(libs.items()), sorted(env.items()), conf, Path("/lib64/ld-linux-x86-64.so.2").resolve()))
    full = f"{tag}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if image_exists(full):
        return full
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "root"
        host_glibc_root(root)
        for path, (soname, needed, rpath, runpath) in libs.items():
            compile_stub(root / path.lstrip("/"), soname, needed, rpath=rpath, runpath=runpath)
        (root / "etc/ld.so.conf").write_text(conf)
        _sh("ldconfig", "-r", str(root))
        _import(root, env, full)
    return full


def _import(root: Path, env: dict[str, str], tag: str) -> None:
    changes: list[str] = []
    for k, v in env.items():
        changes += ["--change", f"ENV {k}={v}"]
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, check=True, capture_output=True)
    tar.wait()


def write_lib(root: Path, path: str, soname: str, needed: tuple[str, ...] = ("libc.so.6",), real: str | None = None
              ) -> None:
    """A stub library at `path` (or at `real` with `path` a relative symlink to it)."""
    target = root / (real or path).lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(build_shared_object(soname, list(needed)))
    if real:
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(real, os.path.dirname(path)))


def cuda_113_cudnn8_runtime(root: Path) -> None:
    """The layout of nvidia/cuda:11.3.1-cudnn8-runtime-ubuntu20.04 (cuda-images reference §2-§6)."""
    lib = "/usr/local/cuda-11.3/targets/x86_64-linux/lib"
    for soname, real in [("libcudart.so.11.0", "libcudart.so.11.3.109"), ("libcublas.so.11", "libcublas.so.11.5.1.109"),
                         ("libcublasLt.so.11", "libcublasLt.so.11.5.1.109"), ("libcufft.so.10", "libcufft.so.10.4.2.109"),
                         ("libcurand.so.10", "libcurand.so.10.2.4.109"), ("libcusolver.so.11", "libcusolver.so.11.1.2.109"),
                         ("libcusparse.so.11", "libcusparse.so.11.6.0.109"), ("libnvrtc.so.11.2", "libnvrtc.so.11.3.109")]:
        needed = ("libcublasLt.so.11", "libc.so.6") if soname in ("libcublas.so.11", "libcusolver.so.11") else ("libc.so.6",)
        write_lib(root, f"{lib}/{soname}", soname, needed, f"{lib}/{real}")
    (root / "usr/local/cuda-11.3/lib64").symlink_to("targets/x86_64-linux/lib")
    (root / "usr/local/cuda").symlink_to("cuda-11.3")
    gnu = "/usr/lib/x86_64-linux-gnu"
    write_lib(root, f"{gnu}/libnccl.so.2", "libnccl.so.2", real=f"{gnu}/libnccl.so.2.9.9")
    for name in ("libcudnn", "libcudnn_ops_infer", "libcudnn_ops_train", "libcudnn_cnn_infer", "libcudnn_cnn_train",
                 "libcudnn_adv_infer", "libcudnn_adv_train"):
        write_lib(root, f"{gnu}/{name}.so.8", f"{name}.so.8", real=f"{gnu}/{name}.so.8.2.0")
    (root / "etc/ld.so.conf.d/000_cuda.conf").write_text("/usr/local/cuda/targets/x86_64-linux/lib\n")
    (root / "etc/ld.so.conf.d/nvidia.conf").write_text("/usr/local/nvidia/lib\n/usr/local/nvidia/lib64\n")
    _sh("ldconfig", "-r", str(root))


CUDA_113_ENV = {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64", "CUDA_VERSION": "11.3.1",
                "NV_CUDNN_VERSION": "8.2.0.53", "NVIDIA_VISIBLE_DEVICES": "all",
                "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
                "PATH": "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def oci_layout_from_save(save_tar: Path, dest: Path, compress: bool = True) -> Path:
    """An OCI image layout (oci-layout, index.json, blobs/sha256/...) holding the image of a legacy
    `docker save` tarball, its layers gzip-compressed as registries and skopeo store them."""
    import gzip
    import json
    import tarfile

    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    with tarfile.open(save_tar) as tar:
        def member(name: str) -> bytes:
            fh = tar.extractfile(name)
            assert fh is not None
            return fh.read()

        entry = json.loads(member("manifest.json"))[0]
        config = put(member(entry["Config"]))
        layers = []
        for name in entry["Layers"]:
            raw = member(name)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
                           **put(gzip.compress(raw, 1) if compress else raw)})
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config}, "layers": layers}
    desc = put(json.dumps(manifest).encode())
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **desc}]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return dest
