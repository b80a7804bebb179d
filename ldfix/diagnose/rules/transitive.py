from __future__ import annotations

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule


def check(ctx: ScanContext) -> list[Finding]:
    """Dependencies of resolved targets that do not resolve, each resolved from the library that needs it;
    the inner cause is classified like a target's."""
    out: list[Finding] = []
    for top, req, res in ctx.broken_dependencies():
        inner = ctx.classify(res.name, res)
        chain = f"{top.name} -> {req.name} -> {res.name}" if req is not top else f"{top.name} -> {res.name}"
        out.append(RULE.finding(f"{top.name} resolves but its dependency {res.name} does not ({chain}); "
                                f"{inner.code}: {inner.message}", soname=top.name, paths=inner.paths,
                                evidence=describe_tried(res), fix=inner.fix))
    return out


RULE = Rule(
    "TRANSITIVE", Severity.ERROR, "a resolved library's own dependency does not resolve",
    "The dependency closure is resolved from each intermediate library's point of view.",
    "Make the missing dependency reachable (PATH_MISSING fix) or install it for the same CUDA major.",
    "libcusolver.so.11 (a CUDA 12 build) NEEDs libnvJitLink.so.12", check=check)
