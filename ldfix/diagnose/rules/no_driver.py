from __future__ import annotations

import re

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.knowledge import cuda
from ldfix.loader.env import in_dir_named

DRIVER_FILE = re.compile(r"^lib(cuda|nvidia-[a-z-]+)\.so\.\d{3}\.\d+(\.\d+)?$")  # libcuda.so.535.104.05


def _baked(ctx: ScanContext) -> list[str]:
    """Driver libraries with a driver version in their name, outside stubs/ and compat/ directories."""
    out: set[str] = set()
    for name, paths in ctx.index.by_name.items():
        if DRIVER_FILE.match(name):
            out.update(p for p in paths if not in_dir_named(p.rsplit("/", 1)[0], "stubs")
                       and not in_dir_named(p.rsplit("/", 1)[0], "compat"))
    return sorted(out)


def check(ctx: ScanContext) -> list[Finding]:
    k = cuda()
    out = []
    baked = _baked(ctx)
    if baked:
        out.append(RULE.finding(f"the image holds a driver's user-space libraries ({', '.join(baked[:3])}"
                                f"{', ...' if len(baked) > 3 else ''}): where they come first they shadow the "
                                "host driver the runtime mounts, and fail on any other driver version",
                                Severity.WARNING, paths=tuple(baked),
                                fix="remove them from the image; the NVIDIA runtime mounts the host's at run time"))
    for name, res in ctx.target_resolutions():
        if k.is_runtime_provided(name) and res is not None and not res.found:
            out.append(RULE.finding(f"{name} is provided by the NVIDIA container runtime at run time (docker run "
                                    "--gpus all); it is not expected in the image", soname=name,
                                    fix="run with --gpus all, --runtime=nvidia or a CDI device"))
    return out


RULE = Rule(
    "NO_DRIVER", Severity.INFO, "driver libraries (libcuda.so.1...) come from the host at run time",
    "libcuda.so.1, libnvidia-ml.so.1 and the like are injected by the NVIDIA container runtime.",
    "Run with --gpus all (or --runtime=nvidia, CDI, or the Kubernetes device plugin); never bake them in.",
    "libcuda.so.1 absent from every nvidia/cuda image", check=check)
