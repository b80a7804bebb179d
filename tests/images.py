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


ARM64_PACKAGES = ("libc6", "libgcc-s1")


def debian_arm64_root(dest: Path) -> Path:
    """A root filesystem of Debian's arm64 libc, unpacked with dpkg-deb from packages `apt-get download`
    fetched (arm64 is added as a foreign architecture first); the .debs are cached."""
    debs = CACHE / "debs-arm64"
    if not list(debs.glob("libc6_*_arm64.deb")):
        debs.mkdir(parents=True, exist_ok=True)
        if "arm64" not in subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True,
                                         text=True).stdout.split():
            _sh("dpkg", "--add-architecture", "arm64")
            _sh("apt-get", "update", "-qq")
        _sh("apt-get", "download", "-q", *(f"{p}:arm64" for p in ARM64_PACKAGES), cwd=str(debs))
    dest.mkdir(parents=True, exist_ok=True)
    for deb in sorted(debs.glob("*_arm64.deb")):
        _sh("dpkg-deb", "-x", str(deb), str(dest))
    return dest


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
                     env: dict[str, str], conf: str = "", after: Callable[[Path], None] | None = None,
                     after_key: str = "") -> str:
    """A shell-less glibc image: this machine's loader and libc plus gcc-compiled stubs, `libs` mapping an image
    path to (soname, needed, rpath, runpath). `conf` becomes /etc/ld.so.conf and the cache is made from it;
    `after` (named by `after_key` in the image's hash) changes the tree once the cache exists."""
    require_docker()
    require_root()
    key = repr((sorted(libs.items()), sorted(env.items()), conf, Path("/lib64/ld-linux-x86-64.so.2").resolve(),
                after_key))
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
        if after is not None:
            after(root)
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


TOOLKIT_LIBS: dict[str, list[tuple[str, str]]] = {
    "11.3": [("libcudart.so.11.0", "11.3.109"), ("libcublas.so.11", "11.5.1.109"), ("libcublasLt.so.11", "11.5.1.109"),
             ("libcufft.so.10", "10.4.2.109"), ("libcurand.so.10", "10.2.4.109"), ("libcusolver.so.11", "11.1.2.109"),
             ("libcusparse.so.11", "11.6.0.109"), ("libnvrtc.so.11.2", "11.3.109")],
    "11.8": [("libcudart.so.11.0", "11.8.89"), ("libcublas.so.11", "11.11.3.6"), ("libcublasLt.so.11", "11.11.3.6"),
             ("libcufft.so.10", "10.9.0.58"), ("libcurand.so.10", "10.3.0.86"), ("libcusolver.so.11", "11.4.1.48"),
             ("libcusparse.so.11", "11.7.5.86"), ("libnvrtc.so.11.2", "11.8.89")],
    "12.8": [("libcudart.so.12", "12.8.90"), ("libcublas.so.12", "12.8.4.1"), ("libcublasLt.so.12", "12.8.4.1"),
             ("libcufft.so.11", "11.3.3.83"), ("libcurand.so.10", "10.3.9.90"), ("libcusolver.so.11", "11.7.3.90"),
             ("libcusparse.so.12", "12.5.8.93"), ("libnvJitLink.so.12", "12.8.93"), ("libnvrtc.so.12", "12.8.93")],
}
CUDNN_LIBS = {8: ["libcudnn", "libcudnn_ops_infer", "libcudnn_ops_train", "libcudnn_cnn_infer", "libcudnn_cnn_train",
                  "libcudnn_adv_infer", "libcudnn_adv_train"],
              9: ["libcudnn", "libcudnn_graph", "libcudnn_ops", "libcudnn_cnn", "libcudnn_adv", "libcudnn_heuristic",
                  "libcudnn_engines_precompiled", "libcudnn_engines_runtime_compiled"]}


def _needs(soname: str, major: str) -> tuple[str, ...]:
    """The toolkit-internal DT_NEEDED of the official libraries (cuda-images reference §5)."""
    deps = {"libcublas": ("libcublasLt",), "libcusolver": ("libcublas", "libcublasLt", "libcusparse"),
            "libcusparse": ()}
    base = soname.split(".so")[0]
    out = [f"{d}.so.{major if d != 'libcusparse' else ('12' if major == '12' else '11')}" for d in deps.get(base, ())]
    if major == "12" and base in ("libcusolver", "libcusparse"):
        out.append("libnvJitLink.so.12")
    return (*out, "libc.so.6")


def cuda_layout(root: Path, version: str, flavour: str, cudnn: int | None = None, cuda_lib64_env: bool = False
                ) -> None:
    """The library layout of nvidia/cuda:<version>-[cudnnN-]<flavour>-ubuntu (cuda-images reference §1-§6):
    the toolkit under /usr/local/cuda-X.Y/targets/x86_64-linux/lib (lib64 and /usr/local/cuda point at it), the
    compat driver in its own directory that nothing names, cuDNN and NCCL debs in /usr/lib/x86_64-linux-gnu,
    000_cuda.conf and nvidia.conf (/usr/local/cuda/lib64 from 12.8.1), and a cache ldconfig built."""
    short = ".".join(version.split(".")[:2])
    major = short.split(".")[0]
    top = f"/usr/local/cuda-{short}"
    lib = f"{top}/targets/x86_64-linux/lib"
    for soname, full in TOOLKIT_LIBS[short]:
        if flavour == "base" and not soname.startswith("libcudart"):
            continue
        write_lib(root, f"{lib}/{soname}", soname, _needs(soname, major), f"{lib}/{soname.split('.so')[0]}.so.{full}")
    write_lib(root, f"{top}/compat/libcuda.so.1", "libcuda.so.1", real=f"{top}/compat/libcuda.so.535.104.05")
    (root / top.lstrip("/") / "lib64").symlink_to("targets/x86_64-linux/lib")
    (root / "usr/local/cuda").symlink_to(f"cuda-{short}")
    gnu = "/usr/lib/x86_64-linux-gnu"
    if flavour != "base":
        write_lib(root, f"{gnu}/libnccl.so.2", "libnccl.so.2", real=f"{gnu}/libnccl.so.2.9.9")
    if cudnn:
        for name in CUDNN_LIBS[cudnn]:
            needed = ("libz.so.1", "libc.so.6") if cudnn == 9 and name != "libcudnn" else ("libc.so.6",)
            write_lib(root, f"{gnu}/{name}.so.{cudnn}", f"{name}.so.{cudnn}", needed,
                      real=f"{gnu}/{name}.so.{cudnn}.{'2.0' if cudnn == 8 else '8.0'}")
    (root / "etc/ld.so.conf.d/000_cuda.conf").write_text("/usr/local/cuda/targets/x86_64-linux/lib\n")
    (root / f"etc/ld.so.conf.d/98{9 if major == '11' else 8}_cuda-{major}.conf").write_text(
        f"/usr/local/cuda-{major}/targets/x86_64-linux/lib\n")
    (root / "usr/local" / f"cuda-{major}").symlink_to(f"cuda-{short}")
    nvidia = "/usr/local/cuda/lib64\n" if cuda_lib64_env else "/usr/local/nvidia/lib\n/usr/local/nvidia/lib64\n"
    (root / "etc/ld.so.conf.d/nvidia.conf").write_text(nvidia)
    _sh("ldconfig", "-r", str(root))


def cuda_env(version: str, cudnn: str | None = None, cuda_lib64_env: bool = False) -> dict[str, str]:
    env = {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64" if cuda_lib64_env else "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
           "CUDA_VERSION": version, "NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
           "PATH": ("/usr/local/cuda/bin" if cuda_lib64_env else "/usr/local/nvidia/bin:/usr/local/cuda/bin")
           + ":/usr/sbin:/usr/bin:/sbin:/bin"}
    if cudnn:
        env["NV_CUDNN_VERSION"] = cudnn
    return env


def cuda_113_cudnn8_runtime(root: Path) -> None:
    cuda_layout(root, "11.3.1", "runtime", cudnn=8)


CUDA_113_ENV = cuda_env("11.3.1", "8.2.0.53")


def read_save(save_tar: Path) -> tuple[bytes, list[bytes]]:
    """(config, uncompressed layer tars, bottom first) of the one image in a legacy `docker save` tarball."""
    import json
    import tarfile

    with tarfile.open(save_tar) as tar:
        def member(name: str) -> bytes:
            fh = tar.extractfile(name)
            assert fh is not None
            return fh.read()

        entry = json.loads(member("manifest.json"))[0]
        return member(entry["Config"]), [member(name) for name in entry["Layers"]]


def oci_layout_from_save(save_tar: Path, dest: Path, compress: bool | str = True,
                         extra_layers: tuple[bytes, ...] = (), tag: str | None = None) -> Path:
    """An OCI image layout (oci-layout, index.json, blobs/sha256/...) holding the image of a legacy
    `docker save` tarball, its layers gzip-compressed as registries and skopeo store them (or zstd, or
    none); `extra_layers` (tars) go on top, and `tag` names the manifest (for `skopeo copy oci:DIR:TAG`)."""
    import gzip
    import json

    def pack(raw: bytes) -> bytes:
        if compress == "zstd":
            try:
                from compression import zstd  # type: ignore[import-not-found,unused-ignore]
            except ImportError:
                from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
            return bytes(zstd.compress(raw))
        return gzip.compress(raw, 1) if compress else raw

    suffix = "+zstd" if compress == "zstd" else "+gzip" if compress else ""

    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    raw_config, raw_layers = read_save(save_tar)
    if extra_layers:
        cfg = json.loads(raw_config)
        cfg["rootfs"]["diff_ids"] += ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in extra_layers]
        raw_config = json.dumps(cfg).encode()
        raw_layers = [*raw_layers, *extra_layers]
    config = put(raw_config)
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar" + suffix, **put(pack(raw))}
              for raw in raw_layers]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config}, "layers": layers}
    desc = put(json.dumps(manifest).encode())
    annotations = {"annotations": {"org.opencontainers.image.ref.name": tag}} if tag else {}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **desc, **annotations}]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return dest


def load_rootfs_as(root: Path, tag: str, architecture: str, env: dict[str, str] | None = None,
                   onbuild: list[str] | None = None) -> str:
    """`docker load` a one-layer image of ROOT whose config says ARCHITECTURE (docker import cannot set it):
    how an image for another platform gets into this daemon without a registry."""
    import io
    import json
    import tarfile

    require_docker()
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "layer.tar"
        _sh("tar", "-C", str(root), "-cf", str(layer), ".")
        diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
        config = json.dumps({"architecture": architecture, "os": "linux",
                             "config": {"Env": [f"{k}={v}" for k, v in (env or {}).items()],
                                        "OnBuild": onbuild or None},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
        bundle = Path(tmp) / "image.tar"
        with tarfile.open(bundle, "w") as tar:
            for name, data in (("config.json", config), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            tar.add(layer, "layer.tar")
        _sh("docker", "load", "-i", str(bundle))
    return tag
