from __future__ import annotations

import posixpath
import re

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.image.base import Kind
from ldfix.knowledge import cuda
from ldfix.loader.ldconf import parse_conf
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


SHIPPED = re.compile(r"^(libc|[a-z0-9_]+-linux-gnu[a-z0-9_]*)\.conf$")


def check(ctx: ScanContext) -> list[Finding]:
    """ld.so.conf.d entries that cannot be what their author meant: a directory that does not exist (a warning),
    and a conf file with no directory in it."""
    out = []
    walker = ctx.walker
    mounted = cuda().runtime_mount_dirs  # /usr/local/nvidia/lib64: the NVIDIA runtime mounts it at run time
    confs = parse_conf(walker)
    for conf in confs:
        if SHIPPED.match(posixpath.basename(conf.source)):
            continue  # glibc's own (x86_64-linux-gnu.conf names /usr/local/lib/x86_64-linux-gnu, often absent)
        if conf.path.startswith("/") and conf.path.rstrip("/") not in mounted and not walker.is_dir(conf.path):
            out.append(RULE.finding(f"{conf.source} (line {conf.line}) names {conf.path}, which does not exist in the "
                                    "image: ldconfig skips it, so nothing there is ever cached", Severity.WARNING,
                                    paths=(conf.path,), evidence=(f"{conf.source}:{conf.line}: {conf.path}",),
                                    fix="create the directory before RUN ldconfig, or name the one that holds "
                                        "the libraries"))
    conf_dir = "/etc/ld.so.conf.d"
    named = {c.source for c in confs}
    for name in sorted(walker.listdir(conf_dir)):
        path = posixpath.join(conf_dir, name)
        found = walker.stat(path)
        if name.endswith(".conf") and found is not None and found[1].kind is Kind.FILE and path not in named:
            out.append(RULE.finding(f"{path} names no directory (empty or comments only): it adds nothing to "
                                    "the cache", Severity.WARNING, paths=(path,),
                                    fix="write the library directory into it (printf '%s\\n' DIR > FILE)"))
    return out


RULE = Rule(
    "STALE_CACHE", Severity.ERROR, "a configured directory holds the library but /etc/ld.so.cache does not list it",
    "ldfix builds the cache ldconfig would write from the image's ld.so.conf and files and compares it "
    "with /etc/ld.so.cache. In a Dockerfile, a RUN ldconfig as a non-root USER is a warning: it cannot "
    "rewrite the cache.",
    "RUN ldconfig after the step that added the libraries (as root).",
    "COPY libfoo.so.1 /usr/local/lib/ with no RUN ldconfig afterwards", explain=explain, check=check)
