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
    in_new_cache = list(ctx.facts.would_be.paths_for(name))
    if not in_new_cache:
        return None
    cache = ctx.facts.cache
    paths = tuple(c.realpath for c in good)
    if cache is None:
        return RULE.finding(f"{name} is in a directory ld.so.conf configures but the image has no usable "
                            "/etc/ld.so.cache", soname=name, paths=paths, evidence=describe_tried(res),
                            fix="RUN ldconfig (as root)")
    if cache.paths_for(name):
        return None
    return RULE.finding(f"{name} is in a directory ld.so.conf configures ({posixpath.dirname(in_new_cache[0])}) "
                        "but /etc/ld.so.cache does not list it: ldconfig was not run after it was added",
                        soname=name, paths=paths, evidence=describe_tried(res),
                        fix="RUN ldconfig after the step that added it (as root)")


RULE = Rule(
    "STALE_CACHE", Severity.ERROR, "a configured directory holds the library but /etc/ld.so.cache does not list it",
    "ldfix builds the cache ldconfig would write from the image's ld.so.conf and files and compares it "
    "with /etc/ld.so.cache. In a Dockerfile, a RUN ldconfig as a non-root USER is a warning: it cannot "
    "rewrite the cache.",
    "RUN ldconfig after the step that added the libraries (as root).",
    "COPY libfoo.so.1 /usr/local/lib/ with no RUN ldconfig afterwards", explain=explain)
