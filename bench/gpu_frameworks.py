"""On a machine with an NVIDIA GPU: do real GPU work in torch, JAX and CuPy (a matmul, a convolution, an FFT
and an NVRTC-compiled kernel in each), read /proc/self/maps of each process for the CUDA libraries it
mapped, then compare with what `ldfix scan dir:/ --static` predicts for that framework: the file each
library resolves to from the framework's own objects. Not part of CI (no GPU there).

    python3 -m bench.gpu_frameworks [OUT_DIR]

Prints one line per mapped library (agree / DISAGREE / not predicted) and writes comparison.json."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CUDA_LIB = re.compile(r"/(lib(?:cu|nv|cudnn|nccl|cufile|cusparseLt)[A-Za-z0-9_+-]*\.so(?:\.[0-9]+)*)$")

WORK = {
    "torch": """
import torch
x = torch.randn(2048, 2048, device="cuda")
(x @ x).sum().item()
conv = torch.nn.Conv2d(3, 8, 3).cuda()
conv(torch.randn(1, 3, 64, 64, device="cuda")).sum().item()
torch.fft.fft(torch.randn(4096, device="cuda")).abs().sum().item()
double = torch.cuda.jiterator._create_jit_fn("template <typename T> T twice(T x) { return x * 2; }")
double(torch.ones(16, device="cuda")).sum().item()
torch.linalg.inv(torch.eye(64, device="cuda") * 2).sum().item()
torch.cuda.synchronize()
""",
    "jax": """
import jax, jax.numpy as jnp
x = jnp.ones((2048, 2048))
(x @ x).block_until_ready()
img = jnp.ones((1, 3, 64, 64)); ker = jnp.ones((8, 3, 3, 3))
jax.lax.conv(img, ker, (1, 1), "SAME").block_until_ready()
jnp.fft.fft(jnp.arange(4096.0)).block_until_ready()
jnp.linalg.inv(jnp.eye(64) * 2).block_until_ready()
""",
    "cupy": """
import cupy as cp, cupyx.scipy.signal as sig
a = cp.random.rand(2048, 2048, dtype=cp.float32)
(a @ a).sum().get()
sig.convolve2d(cp.ones((64, 64)), cp.ones((3, 3))).sum().get()
cp.fft.fft(cp.arange(4096.0)).sum().get()
k = cp.RawKernel(r'extern "C" __global__ void twice(float* x) { x[threadIdx.x] *= 2; }', "twice")
y = cp.ones(32, dtype=cp.float32); k((1,), (32,), (y,)); y.sum().get()
cp.linalg.inv(cp.eye(64) * 2).sum().get()
""",
}
MAPS = """
import json, os
seen = {}
for line in open("/proc/self/maps"):
    path = line.split(None, 5)[-1].strip() if len(line.split(None, 5)) == 6 else ""
    if path.startswith("/") and ".so" in path:
        seen[os.path.realpath(path)] = path
print("LDFIX_MAPS=" + json.dumps(sorted(seen)))
"""


def mapped(framework: str) -> tuple[list[str], str]:
    proc = subprocess.run([sys.executable, "-c", WORK[framework] + MAPS], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0 or "LDFIX_MAPS=" not in proc.stdout:
        return [], f"{framework} work failed ({proc.returncode}): {proc.stderr[-1500:]}"
    paths = json.loads(proc.stdout.rsplit("LDFIX_MAPS=", 1)[1].splitlines()[0])
    return [p for p in paths if CUDA_LIB.search(p)], ""


def predicted(report: dict[str, Any], framework: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in report["frameworks"]:
        if entry["framework"] != framework:
            continue
        for lib in entry["libraries"]:
            if lib.get("realpath"):
                out.setdefault(lib["soname"], set()).add(lib["realpath"])
                out.setdefault(soname_of(lib["realpath"]), set()).add(lib["realpath"])
    return out


def soname_of(path: str) -> str:
    m = CUDA_LIB.search(path)
    name = m.group(1) if m else os.path.basename(path)
    # a realpath may carry the full version (libcudnn.so.9.14.0): compare on the soname the loader asked for
    base, _, ver = name.partition(".so")
    parts = [p for p in ver.split(".") if p]
    return f"{base}.so" + (f".{parts[0]}" if parts else "")


def main() -> int:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent
    scan = subprocess.run([sys.executable, "-m", "ldfix", "scan", "dir:/", "--static", "--format", "json", "-q"],
                          capture_output=True, text=True, timeout=900, cwd=root,
                          env={**os.environ, "PYTHONPATH": f"{root}:{os.environ.get('PYTHONPATH', '')}"})
    if scan.returncode not in (0, 1) or not scan.stdout.strip():
        print(f"ldfix scan dir:/ failed ({scan.returncode}): {scan.stderr[-2000:]}")
        return 3
    report = json.loads(scan.stdout)
    (out_dir / "scan.json").write_text(scan.stdout)
    result: dict[str, Any] = {"frameworks": [(e["framework"], e["version"], e.get("location")) for e in
                                             report["frameworks"]]}
    total = agree = 0
    for framework in WORK:
        libs, error = mapped(framework)
        if error:
            print(error)
            result[framework] = {"error": error}
            continue
        want = predicted(report, framework)
        rows = []
        for real in libs:
            name = soname_of(real)
            if name.startswith(("libcuda.so", "libnvidia-")):
                continue  # the host driver's, mounted by the runtime: not the image's to resolve
            guess = want.get(name, set())
            verdict = "agree" if real in guess else ("not predicted" if not guess else "DISAGREE")
            total += 1
            agree += verdict == "agree"
            rows.append({"mapped": real, "soname": name, "ldfix": sorted(guess), "verdict": verdict})
            print(f"{framework:6} {verdict:13} {name:40} mapped {real}" +
                  ("" if verdict == "agree" else f"  ldfix: {sorted(guess) or '-'}"))
        result[framework] = rows
    result["summary"] = {"mapped": total, "agree": agree}
    print(f"ldfix agrees on {agree} of {total} CUDA libraries the frameworks mapped")
    (out_dir / "comparison.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
