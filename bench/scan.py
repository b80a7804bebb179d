"""`ldfix scan --format json --no-pull` against a bare `docker run --rm --network none IMAGE true` of the same
image, on a small image (the CUDA 11.3.1 cudnn8 runtime replica, ~200 MB) and a large one (Debian with the real
CUDA 12 cuBLAS, cuDNN, cudart and nvJitLink wheels' libraries and two Python trees: over 1.5 GB and 20k files).
Prints median times, the ratios and ldfix's peak RSS.

    python3 -m bench.scan            (needs the Docker daemon and root, like the integration tests)
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import SITE, install_wheel, wheels

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = int(os.environ.get("LDFIX_BENCH_RUNS", "5"))
LARGE_WHEELS = ["nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-nvjitlink-cu12"]
PYLIB = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def large_image() -> str:
    from tests.images import build_image, cuda_env

    names = [w.name for w in wheels(LARGE_WHEELS)]

    def customize(root: Path) -> None:
        for wheel in wheels(LARGE_WHEELS):
            install_wheel(wheel, root, everything=True)
        for dest in ("usr/local/lib/python3.11", "opt/venv/lib/python3.11"):
            shutil.copytree(PYLIB, root / dest, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("site-packages"))
        (root / "etc/ld.so.conf.d/zz-wheels.conf").write_text(
            "".join(f"{SITE}/nvidia/{d}/lib\n" for d in ("cuda_runtime", "cublas", "cudnn", "nvjitlink")))
        subprocess.run(["ldconfig", "-r", str(root)], check=True)

    return build_image("ldfix-bench/large:cuda12", customize, cuda_env("12.9.0"), "large-v2 " + " ".join(names))


def small_image() -> str:
    from tests.images import CUDA_113_ENV, build_image, cuda_113_cudnn8_runtime

    return build_image("ldfix-test/cuda:11.3.1-cudnn8-runtime", cuda_113_cudnn8_runtime, CUDA_113_ENV, "v2")


def image_facts(image: str) -> tuple[float, int]:
    size = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], capture_output=True,
                              text=True, check=True).stdout)
    files = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c",
                            "find / -xdev | wc -l"], capture_output=True, text=True, check=True).stdout
    return size / 1e9, int(files.strip())


def timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed, proc.stderr


def measure(image: str) -> tuple[float, float, float]:
    bare, scan, rss = [], [], []
    for _ in range(RUNS):
        bare.append(timed(["docker", "run", "--rm", "--network", "none", image, "true"])[0])
        took, err = timed([sys.executable, "-m", "bench.measure", "scan", image, "--format", "json", "--no-pull"])
        scan.append(took)
        rss.append(int(err.rsplit("LDFIX_PEAK_RSS_KB=", 1)[1].split()[0]) / 1024)
    return statistics.median(bare), statistics.median(scan), max(rss)


def main() -> int:
    small, large = small_image(), large_image()
    rows = {}
    for label, image in (("small", small), ("large", large)):
        gb, files = image_facts(image)
        bare, scan, rss = measure(image)
        rows[label] = scan
        print(f"{label:5} {image}: {gb:.2f} GB, {files} files")
        print(f"      docker run --rm --network none IMAGE true: {bare:6.2f} s (median of {RUNS})")
        print(f"      ldfix scan --format json --no-pull       : {scan:6.2f} s, peak RSS {rss:.0f} MB")
        print(f"      ratio scan / bare run                    : {scan / bare:6.2f}x  (target <= 3)")
    print(f"large / small scan time: {rows['large'] / rows['small']:.2f}x  (target <= 2)")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
