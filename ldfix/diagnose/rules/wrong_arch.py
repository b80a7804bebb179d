from __future__ import annotations

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.loader.search import Resolution


def explain(ctx: ScanContext, name: str, res: Resolution) -> Finding | None:
    cands = ctx.index.candidates(name)
    platform = ctx.facts.platform
    if not cands or any(c.info.elf_class == platform.elf_class and c.info.machine == platform.machine
                        for c in cands):
        return None
    what = ", ".join(f"{c.realpath} ({c.info.elf_class}-bit {c.info.machine_name})" for c in cands)
    return RULE.finding(f"{name} exists only for another architecture: {what}", soname=name,
                        paths=tuple(c.realpath for c in cands), evidence=describe_tried(res),
                        fix="use the image for the right platform (--platform) or install the libraries for its "
                            "architecture; no path change helps")


RULE = Rule(
    "WRONG_ARCH", Severity.ERROR, "a candidate has the wrong ELF class or machine for the image",
    "The only files with the wanted SONAME have another ELF class or e_machine than the image's loader.",
    "Use the image for the right platform or install the libraries for its architecture.",
    "an aarch64 libcudnn.so.8 in an amd64 image", explain=explain)
