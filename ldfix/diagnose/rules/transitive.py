from __future__ import annotations

from ldfix.diagnose.context import PROBE, ScanContext, describe_tried, top_target
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.knowledge import cuda


def check(ctx: ScanContext) -> list[Finding]:
    """Dependencies of resolved targets that do not resolve, each resolved from the library that needs it;
    the inner cause is classified like a target's."""
    out: list[Finding] = []
    k = cuda()
    for res in ctx.closure.missing:
        if res.requester == PROBE or k.is_runtime_provided(res.name):
            continue
        req = next((o for o in ctx.closure.objects if o.path == res.requester), None)
        top = top_target(req)
        if top is None:
            continue
        inner = ctx.classify(res.name, res)
        chain = f"{top.name} -> {req.name if req else '?'} -> {res.name}" if req is not top else \
            f"{top.name} -> {res.name}"
        out.append(RULE.finding(f"{top.name} resolves but its dependency {res.name} does not ({chain}); "
                                f"{inner.code}: {inner.message}", soname=top.name, paths=inner.paths,
                                evidence=describe_tried(res), fix=inner.fix))
    return out


RULE = Rule(
    "TRANSITIVE", Severity.ERROR, "a resolved library's own dependency does not resolve",
    "The dependency closure is resolved from each intermediate library's point of view.",
    "Make the missing dependency reachable (PATH_MISSING fix) or install it for the same CUDA major.",
    "libcusolver.so.11 (a CUDA 12 build) NEEDs libnvJitLink.so.12", check=check)
