from __future__ import annotations

import posixpath

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.loader.env import search_dirs


def check(ctx: ScanContext) -> list[Finding]:
    """A loaded library whose own RPATH/RUNPATH names a directory holding one of its dependencies, while the
    process binds that dependency to another copy: loaded earlier from elsewhere, or found first on
    LD_LIBRARY_PATH (typically /usr/local/cuda/lib64 beating a wheel's RUNPATH $ORIGIN)."""
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    closure = ctx.closure
    for req in closure.objects[1:]:
        tags = req.runpath if req.runpath is not None else req.rpath
        if not tags:
            continue
        dirs = [e.path for e in search_dirs(tags.split(":"), req.origin, ctx.facts.platform.lib_token, None)
                if e.path]
        for name in req.info.needed:
            bound = next((o for o in closure.objects if name in o.names or o.info.soname == name), None)
            if bound is None or (req.path, name) in seen:
                continue
            intended = next((p for d in dirs if ctx.walker.stat(p := posixpath.join(d, name)) is not None), None)
            real = ctx.facts.realpath(intended)
            if intended is None or real is None or real == bound.realpath:
                continue
            seen.add((req.path, name))
            how = bound.resolution.step.value if bound.resolution and bound.resolution.step else "loaded first"
            out.append(RULE.finding(
                f"{req.name} expects {name} from {posixpath.dirname(intended)} (its "
                f"{'RUNPATH' if req.runpath is not None else 'RPATH'}) but the process uses {bound.path} ({how})",
                soname=name, paths=(bound.realpath, real), evidence=describe_tried(bound.resolution),
                fix="remove the duplicate or put the intended directory first"))
    return out


RULE = Rule(
    "SHADOWED", Severity.WARNING, "several files provide the SONAME and the loader picks another than intended",
    "Several candidates share the SONAME; the winner is outside the requester's own RPATH/RUNPATH "
    "directories while a copy inside them exists.",
    "Remove the duplicate, or put the intended directory first.",
    "LD_LIBRARY_PATH=/usr/local/cuda/lib64 beats a wheel's RUNPATH $ORIGIN copy of libcublasLt.so.12", check=check)
