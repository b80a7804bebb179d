from __future__ import annotations

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules._dirs import on_search_paths
from ldfix.diagnose.rules.base import Rule


def check(ctx: ScanContext) -> list[Finding]:
    return on_search_paths(ctx, RULE, "compat", "{name} resolves to a forward-compatibility copy {path}, which "
                           "would shadow the host driver", "remove the compat directory from search paths")


RULE = Rule(
    "COMPAT", Severity.WARNING, "a CUDA forward-compatibility directory (.../compat) is on a search path",
    "An LD_LIBRARY_PATH entry or ld.so.conf directory ends in compat (a warning), or libcuda resolves into "
    "one (an error: it would shadow the injected driver).",
    "Remove it; the NVIDIA container toolkit decides about forward compatibility at run time.",
    "ENV LD_LIBRARY_PATH=/usr/local/cuda/compat:$LD_LIBRARY_PATH", check=check)
