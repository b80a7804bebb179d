from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule

# libraries that must come from one release: a family prefix and the members that must match its core
FAMILIES = (("libcudnn", re.compile(r"^libcudnn(_[a-z_]+)?\.so\.\d+$")),
            ("libcublas", re.compile(r"^libcublas(Lt)?\.so\.\d+$")))
_VERSION = re.compile(r"\.so\.(\d+(?:\.\d+)+)$")


def release_of(realpath: str) -> str | None:
    """The full version in a library's file name (libcudnn_graph.so.9.10.2 -> 9.10.2), or None."""
    m = _VERSION.search(posixpath.basename(realpath))
    return m.group(1) if m else None


def skew_findings(loaded: Mapping[str, str], release: Callable[[str], str | None]) -> list[Finding]:
    """VERSION_SKEW for each family whose members (soname -> realpath, as loaded together) come from more than
    one release; `release` says which release a file belongs to."""
    out = []
    for family, member in FAMILIES:
        versions: dict[str, list[str]] = {}
        for name, real in sorted(loaded.items()):
            version = release(real) if member.match(name) else None
            if version is not None:
                versions.setdefault(version, []).append(f"{name} -> {real}")
        if len(versions) > 1:
            listed = "; ".join(f"{v}: {', '.join(names)}" for v, names in sorted(versions.items()))
            out.append(RULE.finding(
                f"{family} libraries of different releases are loaded together ({listed}): expect "
                "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH or 'undefined symbol ... version' errors",
                paths=tuple(p.split(" -> ")[1] for names in versions.values() for p in names),
                evidence=tuple(p for names in versions.values() for p in names),
                fix="make one release reachable first for all of them (one LD_LIBRARY_PATH directory, or remove "
                    "the older copy)"))
    return out


def check(ctx: ScanContext) -> list[Finding]:
    return skew_findings({o.name: o.realpath for o in ctx.closure.objects[1:] if o.realpath}, release_of)


RULE = Rule(
    "VERSION_SKEW", Severity.ERROR, "libraries that must come from one release resolve to files of different "
    "releases",
    "The versions in the file names of cuDNN and its sub-libraries, or of cuBLAS and cuBLASLt, as the model "
    "loads them together, differ.",
    "Make one release reachable first for the whole family (put its directory first on LD_LIBRARY_PATH, or "
    "remove the other copy); never mix a pip wheel's cuDNN with the system's sub-libraries.",
    "libcudnn.so.9 -> 9.10.2 from the wheel, libcudnn_graph.so.9 -> 9.1.0 from /usr/lib/x86_64-linux-gnu",
    check=check)
