from __future__ import annotations

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.knowledge import cuda


def check(ctx: ScanContext) -> list[Finding]:
    k = cuda()
    return [RULE.finding(f"{name} is provided by the NVIDIA container runtime at run time (docker run --gpus all); "
                         "it is not expected in the image", soname=name,
                         fix="run with --gpus all, --runtime=nvidia or a CDI device")
            for name, res in ctx.target_resolutions()
            if k.is_runtime_provided(name) and res is not None and not res.found]


RULE = Rule(
    "NO_DRIVER", Severity.INFO, "driver libraries (libcuda.so.1...) come from the host at run time",
    "libcuda.so.1, libnvidia-ml.so.1 and the like are injected by the NVIDIA container runtime.",
    "Run with --gpus all (or --runtime=nvidia, CDI, or the Kubernetes device plugin); never bake them in.",
    "libcuda.so.1 absent from every nvidia/cuda image", check=check)
