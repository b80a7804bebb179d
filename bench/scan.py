"""What a scan costs, side by side with what the user would do anyway, on two images built here:

- large: Debian plus the real CUDA 12 wheels (cuBLAS, cuDNN, NCCL, cuSPARSE, cuFFT, cuSOLVER, cuRAND, NVRTC,
  nvJitLink, cudart) and a real Python tree (this machine's stdlib and site-packages), in six layers, with
  whiteouts and an opaque directory: over 3 GB and 50,000 files;
- small: the CUDA 11.3.1 cudnn8 runtime replica (~200 MB) with three more small layers and a whiteout.

It prints, each as a median over LDFIX_BENCH_RUNS runs of the same run, with ldfix's peak RSS:
verified scan / bare `docker run --rm --network none IMAGE true`; `--static` scan / the same bare run;
large / small (verified); `docker-archive:` static scan / `cat` of the archive; an OCI layout with gzip
layers (made with Debian's skopeo) static scan / one zlib inflate pass over its layer blobs. Each scan is
measured as a first scan (no snapshot) and as a later one (the snapshot an earlier scan kept).
Every measured run and every baseline is checked (exit status, output), so a baseline that did not run
stops the bench instead of printing a ratio.

    python3 -m bench.scan            (needs the Docker daemon, root and skopeo, like the integration tests)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from bench.common import SITE, install_wheel, wheels

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = int(os.environ.get("LDFIX_BENCH_RUNS", "5"))
WORK = Path(os.environ.get("LDFIX_BENCH_CACHE", Path.home() / ".cache" / "ldfix-bench"))
PART_A = ["nvidia-cublas-cu12", "nvidia-cudnn-cu12"]
PART_B = ["nvidia-nccl-cu12", "nvidia-cusparse-cu12", "nvidia-cufft-cu12", "nvidia-cusolver-cu12",
          "nvidia-curand-cu12", "nvidia-cuda-nvrtc-cu12", "nvidia-nvjitlink-cu12", "nvidia-cuda-runtime-cu12"]
PYLIB = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def fail(what: str) -> None:
    raise SystemExit(f"bench: {what}")


def sh(args: list[str], ok: tuple[int, ...] = (0,), **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode not in ok:
        fail(f"{' '.join(args[:6])} ... exited {proc.returncode}: {(proc.stderr or proc.stdout)[-800:]}")
    return proc  # type: ignore[no-any-return]


def _docker_build(tag: str, context: Path, dockerfile: str) -> str:
    if sh(["docker", "image", "inspect", tag], ok=(0, 1)).returncode == 0:
        return tag
    (context / "Dockerfile").write_text(dockerfile)
    print(f"building {tag} ...", file=sys.stderr, flush=True)
    sh(["docker", "build", "--network", "none", "-q", "-t", tag, str(context)], timeout=3600)
    return tag


def large_image() -> str:
    from tests.images import build_image, cuda_env

    a, b = wheels(PART_A), wheels(PART_B)
    key = "large-v3 " + " ".join(w.name for w in a + b) + f" {sys.version}"
    tag = "ldfix-bench/large:" + hashlib.sha256(key.encode()).hexdigest()[:12]
    if sh(["docker", "image", "inspect", tag], ok=(0, 1)).returncode == 0:
        return tag
    base = build_image("ldfix-bench/base:debian", lambda root: None, cuda_env("12.9.0"), "bench-base-v1")
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        ctx = Path(tmp)
        for part, group in (("a", a), ("b", b)):
            for wheel in group:
                install_wheel(wheel, ctx / part, everything=True)
        shutil.copytree(PYLIB, ctx / "py" / "usr/local/lib/python3.11", symlinks=True)
        (ctx / "wheels.conf").write_text("".join(f"{SITE}/nvidia/{d}/lib\n" for d in (
            "cuda_runtime", "cublas", "cudnn", "nccl", "cusparse", "cufft", "cusolver", "curand", "cuda_nvrtc",
            "nvjitlink")))
        site = SITE.lstrip("/")
        dockerfile = f"""FROM {base}
COPY a/{site} /{site}
COPY b/{site} /{site}
COPY py/ /
COPY wheels.conf /etc/ld.so.conf.d/zz-wheels.conf
RUN rm -rf /usr/local/lib/python3.11/test /usr/share/doc/apt /{site}/nvidia/cublas/include \\
 && rm -rf /usr/local/lib/python3.11/site-packages/pip && mkdir /usr/local/lib/python3.11/site-packages/pip \\
 && echo replaced > /usr/local/lib/python3.11/site-packages/pip/__init__.py && ldconfig
ENV LD_LIBRARY_PATH=/usr/local/nvidia/lib64
"""
        return _docker_build(tag, ctx, dockerfile)


def small_image() -> str:
    from tests.images import CUDA_113_ENV, build_image, cuda_113_cudnn8_runtime

    replica = build_image("ldfix-test/cuda:11.3.1-cudnn8-runtime", cuda_113_cudnn8_runtime, CUDA_113_ENV, "v2")
    tag = f"ldfix-bench/small:{replica.rsplit('-', 1)[-1]}"
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        ctx = Path(tmp)
        (ctx / "app").mkdir()
        for i in range(200):
            (ctx / "app" / f"m{i}.py").write_text(f"X = {i}\n")
        (ctx / "local.conf").write_text("/opt/app/lib\n")
        return _docker_build(tag, ctx, f"""FROM {replica}
COPY app /opt/app/python
COPY local.conf /etc/ld.so.conf.d/local.conf
RUN mkdir -p /opt/app/lib && rm -rf /usr/share/doc/apt /opt/app/python/m0.py && ldconfig
""")


def image_facts(image: str) -> tuple[float, int, int]:
    attrs = json.loads(sh(["docker", "image", "inspect", image]).stdout)[0]
    files = sh(["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c",
                "find / -xdev | wc -l"]).stdout
    return attrs["Size"] / 1e9, int(files.strip()), len(attrs["RootFS"]["Layers"])


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def scan_env(cache: bool) -> dict[str, str]:
    """The environment scans run in: byte code cached as a pip install has it (PYTHONDONTWRITEBYTECODE off),
    and image snapshots (ldfix/image/snapshot.py) in the bench's own folder, or off for the cold runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["LDFIX_CACHE_DIR"] = str(WORK / "ldfix-cache")
    if not cache:
        env["LDFIX_NO_CACHE"] = "1"
    return env


def ldfix(args: list[str], cache: bool = True) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one `ldfix scan ... --format json`, its report checked."""
    start = time.perf_counter()
    proc = sh([sys.executable, "-m", "bench.measure", "scan", *args, "--format", "json", "-q"], ok=(0, 1),
              env=scan_env(cache))
    took = time.perf_counter() - start
    report = json.loads(proc.stdout)
    if not report.get("libraries"):
        fail(f"ldfix scan {args[0]} found no library: {proc.stderr[-500:]}")
    rss = int(proc.stderr.rsplit("LDFIX_PEAK_RSS_KB=", 1)[1].split()[0]) / 1024
    return took, rss


def bare_run(image: str) -> None:
    sh(["docker", "run", "--rm", "--network", "none", image, "true"])


def cat(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def inflate_blobs(layout: Path) -> None:
    """One zlib pass over every gzip layer blob of an OCI layout (the least any reader of it must do)."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    total = 0
    for layer in manifest["layers"]:
        d = zlib.decompressobj(wbits=31)
        with open(layout / "blobs/sha256" / layer["digest"][7:], "rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(d.decompress(chunk))
    if total == 0:
        fail(f"no bytes inflated from {layout}")


def median(fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(RUNS))


def scans(ref: list[str], cache: bool = True) -> tuple[float, float]:
    """Median seconds and peak RSS of RUNS scans; with the cache, after one untimed scan that writes the
    image's snapshot (what a second scan of the same image finds)."""
    if cache:
        ldfix(ref, cache)
    runs = [ldfix(ref, cache) for _ in range(RUNS)]
    return statistics.median(t for t, _ in runs), max(r for _, r in runs)


def archives(image: str, tmp: Path) -> tuple[Path, Path]:
    save = tmp / "image.tar"
    sh(["docker", "save", "-o", str(save), image], timeout=1800)
    oci = tmp / "oci"
    sh(["skopeo", "copy", "-q", f"docker-archive:{save}", f"oci:{oci}:bench"], timeout=3600)
    return save, oci


def report(label: str, image: str, tmp: Path) -> float:
    gb, files, layers = image_facts(image)
    print(f"{label} {image}: {gb:.2f} GB, {files} files, {layers} layers", flush=True)
    bare = median(lambda: timed(lambda: bare_run(image)))
    cold_v, cv_rss = scans([image, "--no-pull"], cache=False)
    cold_s, cs_rss = scans([image, "--no-pull", "--static"], cache=False)
    verified, v_rss = scans([image, "--no-pull"])
    static, s_rss = scans([image, "--no-pull", "--static"])
    print(f"  docker run --rm --network none IMAGE true : {bare:6.2f} s")
    print(f"  verified scan, no snapshot (first scan)   : {cold_v:6.2f} s  peak RSS {cv_rss:4.0f} MB  "
          f"ratio {cold_v / bare:4.2f}x (target <= 2.0)")
    print(f"  --static scan, no snapshot (first scan)   : {cold_s:6.2f} s  peak RSS {cs_rss:4.0f} MB  "
          f"ratio {cold_s / bare:4.2f}x (target <= 1.0)")
    print(f"  verified scan (warm: snapshot kept)       : {verified:6.2f} s  peak RSS {v_rss:4.0f} MB  "
          f"ratio {verified / bare:4.2f}x (target <= 2.0)")
    print(f"  --static scan (warm: snapshot kept)       : {static:6.2f} s  peak RSS {s_rss:4.0f} MB  "
          f"ratio {static / bare:4.2f}x (target <= 1.0)", flush=True)
    save, oci = archives(image, tmp)
    t_cat = median(lambda: timed(lambda: cat(save)))
    cold_a, ca_rss = scans([f"docker-archive:{save}"], cache=False)
    t_arc, a_rss = scans([f"docker-archive:{save}"])
    print(f"  cat image.tar > /dev/null                 : {t_cat:6.2f} s")
    print(f"  docker-archive: static, first scan        : {cold_a:6.2f} s  peak RSS {ca_rss:4.0f} MB  "
          f"ratio {cold_a / t_cat:4.2f}x (target <= 1.5)")
    print(f"  docker-archive: static (snapshot kept)    : {t_arc:6.2f} s  peak RSS {a_rss:4.0f} MB  "
          f"ratio {t_arc / t_cat:4.2f}x (target <= 1.5)", flush=True)
    t_inf = median(lambda: timed(lambda: inflate_blobs(oci)))
    cold_o, co_rss = scans([f"oci-dir:{oci}"], cache=False)
    t_oci, o_rss = scans([f"oci-dir:{oci}"])
    print(f"  zlib inflate of the OCI layout's blobs    : {t_inf:6.2f} s")
    print(f"  oci-dir: (gzip layers) static, first scan : {cold_o:6.2f} s  peak RSS {co_rss:4.0f} MB  "
          f"ratio {cold_o / t_inf:4.2f}x (target <= 1.2)")
    print(f"  oci-dir: static (snapshot kept)           : {t_oci:6.2f} s  peak RSS {o_rss:4.0f} MB  "
          f"ratio {t_oci / t_inf:4.2f}x (target <= 1.2)", flush=True)
    return verified


def main() -> int:
    if shutil.which("skopeo") is None:
        fail("skopeo is not installed: apt-get install -y skopeo")
    WORK.mkdir(parents=True, exist_ok=True)
    small, large = small_image(), large_image()
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        t_small = report("small", small, Path(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        t_large = report("large", large, Path(tmp))
    print(f"large / small verified scan: {t_large / t_small:.2f}x (target <= 1.3)")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
