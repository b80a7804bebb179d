from __future__ import annotations

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.knowledge import cuda
from ldfix.loader.search import Resolution


def release_context(ctx: ScanContext, name: str) -> str:
    """Which CUDA (or cuDNN) release ships `name`, and what this image's CUDA calls that library."""
    k = cuda()
    shipped = k.releases_for(name)
    if not shipped:
        return ""
    out = f" ({name} belongs to {shipped}"
    version = ctx.facts.view.config.env.get("CUDA_VERSION")
    here = k.soname_in_release(version, name) if version else None
    if here and here != name:
        out += f"; this image's CUDA {version} provides {here}"
    return out + ")"


def explain(ctx: ScanContext, name: str, res: Resolution) -> Finding | None:
    base = name.partition(".so")[0]
    others = sorted(s for s in ctx.index.sonames() if s.startswith(base + ".so.") and s != name)
    if not others:
        return None
    return RULE.finding(f"{name} is not in the image; another major is: {', '.join(others)}"
                        + release_context(ctx, name), soname=name,
                        paths=tuple(c.realpath for s in others for c in ctx.index.candidates(s)),
                        evidence=describe_tried(res),
                        fix="use the framework build for the image's CUDA/cuDNN or install the wanted major side by "
                            "side; never symlink one major to another")


RULE = Rule(
    "WRONG_MAJOR", Severity.ERROR, "the wanted SONAME is absent but another major version of it is present",
    "libX.so.N is wanted; only libX.so.M files exist (compared by SONAME).",
    "Use the framework build for the image's CUDA/cuDNN, or install the wanted major side by side. "
    "Never symlink one major to another: the ABI differs.",
    "TensorFlow 2.4 wants libcusolver.so.10 on a CUDA 11.3 image that ships libcusolver.so.11", explain=explain)
