from __future__ import annotations

import posixpath

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.loader.search import Resolution


def explain(ctx: ScanContext, name: str, res: Resolution) -> Finding | None:
    good = ctx.index.good_candidates(name, ctx.facts.platform)
    if not good:
        return None
    dirs = sorted({posixpath.dirname(c.realpath) for c in good})
    return RULE.finding(f"{name} exists at {', '.join(dirs)} but no search path reaches it", soname=name,
                        paths=tuple(c.realpath for c in good), evidence=describe_tried(res),
                        fix=f"add {', '.join(dirs)} to LD_LIBRARY_PATH")


def check(ctx: ScanContext) -> list[Finding]:
    """The loader stops altogether (a file it must map is broken): nothing after it loads."""
    fatal = ctx.closure.fatal
    if fatal is None:
        return []
    return [RULE.finding(f"the loader stops: {fatal.error}", soname=fatal.name, paths=(fatal.realpath or "",),
                         evidence=describe_tried(fatal), fix="remove or replace the broken file")]


RULE = Rule(
    "PATH_MISSING", Severity.ERROR, "a file with the wanted SONAME exists, but no search step reaches it",
    "The loader model searches RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache and the default directories "
    "from the requester; every path it tried is listed. A file whose ELF SONAME matches lies elsewhere.",
    "Prepend the candidate's directory with ENV LD_LIBRARY_PATH=\"<dir>${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}\"; "
    "for system library directories the cache does not cover (/usr/lib64 on Debian) an ld.so.conf.d file "
    "plus RUN ldconfig instead. Either fix is re-checked so it resolves every target and shadows nothing.",
    "pip's nvidia/cudnn/lib/libcudnn.so.9 with nothing pointing at site-packages/nvidia/cudnn/lib",
    check=check, explain=explain)
