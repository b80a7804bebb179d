"""What COMPAT and STUB share: a CUDA directory of a given name on a run-time search path."""

from __future__ import annotations

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.knowledge import cuda
from ldfix.loader.env import in_dir_named, split_ld_library_path
from ldfix.loader.ldconf import parse_conf


def on_search_paths(ctx: ScanContext, rule: Rule, word: str, resolved_message: str, resolved_fix: str
                    ) -> list[Finding]:
    """An error for each driver library that resolves into a `word` directory (it would shadow the driver
    the runtime injects), a warning for each such directory on LD_LIBRARY_PATH or in ld.so.conf."""
    out: list[Finding] = []
    k = cuda()
    for name, res in ctx.target_resolutions():
        if res is None or not res.found or not res.realpath or not k.is_runtime_provided(name):
            continue
        if in_dir_named(res.realpath, word):
            out.append(rule.finding(resolved_message.format(name=name, path=res.path), Severity.ERROR, soname=name,
                                    paths=(res.realpath,), evidence=describe_tried(res), fix=resolved_fix))
    value = ctx.env.get("LD_LIBRARY_PATH")
    for raw in split_ld_library_path(value) or []:
        if in_dir_named(raw, word):
            out.append(rule.finding(f"{raw} ({word} directory) is on LD_LIBRARY_PATH", paths=(raw,),
                                    evidence=(f"LD_LIBRARY_PATH={value}",), fix=f"remove {raw} from LD_LIBRARY_PATH"))
    for d in parse_conf(ctx.walker):
        if d.path.endswith("/" + word):
            out.append(rule.finding(f"{d.path} ({word} directory) is configured in {d.source}:{d.line}",
                                    paths=(d.path,), evidence=(f"{d.source}:{d.line}",), fix=f"remove {d.source}"))
    return out
