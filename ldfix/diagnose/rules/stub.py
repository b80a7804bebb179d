from __future__ import annotations

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules._dirs import on_search_paths
from ldfix.diagnose.rules.base import Rule


def check(ctx: ScanContext) -> list[Finding]:
    return on_search_paths(ctx, RULE, "stubs", "{name} resolves to a link-time stub {path}",
                           "remove the stubs directory from run-time search paths")


RULE = Rule(
    "STUB", Severity.WARNING, "a stub directory (.../stubs) is on a run-time search path",
    "An LD_LIBRARY_PATH entry or ld.so.conf directory is a stubs directory (a warning), or libcuda resolves "
    "into one (an error: CUDA_ERROR_STUB_LIBRARY at run time).",
    "Remove it from run-time paths; stubs belong on LIBRARY_PATH for linking only.",
    "ENV LD_LIBRARY_PATH=/usr/local/cuda/lib64/stubs", check=check)
