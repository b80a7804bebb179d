"""A `registry:` scan of the large bench image (bench/scan.py) served by Debian's docker-registry on loopback,
against one pass that downloads and inflates every layer blob (the least any registry reader must do), in
the same run; ldfix's peak RSS; and with `--cache DIR`, a second scan against the first.

    python3 -m bench.registry            (needs the Docker daemon, docker-registry and skopeo)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import requests

from bench.scan import RUNS, WORK, fail, large_image, sh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def download_and_inflate(host: str, name: str) -> int:
    """Every layer blob of NAME:1 fetched and inflated once, as a stream; the inflated byte count."""
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    manifest = requests.get(f"http://{host}/v2/{name}/manifests/1", headers={"Accept": accept}, timeout=30).json()
    total = 0
    for layer in manifest["layers"]:
        d = zlib.decompressobj(wbits=31)
        with requests.get(f"http://{host}/v2/{name}/blobs/{layer['digest']}", stream=True, timeout=60) as resp:
            resp.raise_for_status()
            for chunk in resp.raw.stream(1 << 18, decode_content=False):
                total += len(d.decompress(chunk))
    if total == 0:
        fail("the baseline inflated nothing")
    return total


def scan(ref: str, *extra: str) -> tuple[float, float]:
    start = time.perf_counter()
    proc = sh([sys.executable, "-m", "bench.measure", "scan", ref, "--format", "json", "-q", *extra], ok=(0, 1))
    took = time.perf_counter() - start
    if not json.loads(proc.stdout).get("libraries"):
        fail(f"ldfix scan {ref} found no library")
    return took, int(proc.stderr.rsplit("LDFIX_PEAK_RSS_KB=", 1)[1].split()[0]) / 1024


def main() -> int:
    from tests.distribution import Distribution

    image = large_image()
    storage = WORK / "registry-storage"
    reg = Distribution(storage=storage)
    try:
        name = "bench/large"
        status, _, _ = reg.request("GET", f"/v2/{name}/manifests/1")
        if status != 200:
            print(f"pushing {image} to the loopback registry ...", file=sys.stderr, flush=True)
            reg.push(image, f"{name}:1")
        ref = f"registry:{reg.host}/{name}:1"
        base = statistics.median(_timed(lambda: download_and_inflate(reg.host, name)) for _ in range(RUNS))
        runs = [scan(ref) for _ in range(RUNS)]
        t_scan, rss = statistics.median(t for t, _ in runs), max(r for _, r in runs)
        print(f"large image from {reg.host}: download + inflate every layer once: {base:6.2f} s")
        print(f"  ldfix scan registry:   {t_scan:6.2f} s  peak RSS {rss:4.0f} MB  ratio {t_scan / base:4.2f}x "
              "(target <= 1.2; RSS < 200 MB)")
        firsts, seconds = [], []
        for _ in range(RUNS):
            cache = Path(tempfile.mkdtemp(dir=WORK, prefix="cache-"))
            try:
                firsts.append(scan(ref, "--cache", str(cache))[0])
                seconds.append(scan(ref, "--cache", str(cache))[0])
            finally:
                shutil.rmtree(cache, ignore_errors=True)
        first, second = statistics.median(firsts), statistics.median(seconds)
        print(f"  --cache, first scan    {first:6.2f} s")
        print(f"  --cache, second scan   {second:6.2f} s  ratio {second / first:4.2f}x (target <= 0.3)")
    finally:
        reg.stop()
    return 0


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
