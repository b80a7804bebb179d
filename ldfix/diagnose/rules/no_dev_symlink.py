from __future__ import annotations

import posixpath

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.loader.search import Resolution


def explain(ctx: ScanContext, name: str, res: Resolution) -> Finding | None:
    base, _, version = name.partition(".so")
    if version != "":
        return None
    versioned = sorted(s for s in ctx.index.sonames() if s.startswith(base + ".so."))
    if not versioned:
        return None
    newest = versioned[-1]
    paths = tuple(c.realpath for s in versioned for c in ctx.index.candidates(s))
    directory = posixpath.dirname(ctx.index.candidates(newest)[0].path)
    # root causes §3: an error when a consumer must load the name to work (asked for with --lib / --for);
    # a warning when it is an optional dlopen inside a library that works without it
    severity = Severity.ERROR if name in ctx.asked else Severity.WARNING
    return RULE.finding(f"{name} (unversioned) is wanted; only {', '.join(versioned)} exist", severity,
                        soname=name, paths=paths, evidence=describe_tried(res),
                        fix=f"RUN ln -s {newest} {directory}/{name} (same major, same directory), or install the "
                            "-dev package")


RULE = Rule(
    "NO_DEV_SYMLINK", Severity.WARNING, "an unversioned name (libcudnn.so) is wanted and only versioned files exist",
    "The wanted name has no version suffix and libX.so.N exists. An error when the name was asked for "
    "(--lib, --for); a warning when it is an optional dlopen.",
    "RUN ln -s libX.so.N <same dir>/libX.so (same major, same directory), or install the -dev package.",
    "cuDNN 8 dlopens libnvrtc.so; runtime images ship only libnvrtc.so.11.2", explain=explain)
