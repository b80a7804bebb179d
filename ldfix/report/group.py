"""Findings as the human formats show them: those of one code and severity together, with a fix they share
said once (twelve PATH_MISSING libraries under site-packages/nvidia/*/lib are one ENV line). JSON keeps one
finding per library."""

from __future__ import annotations

from dataclasses import dataclass

from ldfix.diagnose.finding import FIXABLE, Finding, Report


@dataclass(frozen=True)
class Group:
    code: str
    severity: str
    findings: tuple[Finding, ...]
    fixes: tuple[str, ...]  # each distinct fix once

    @property
    def title(self) -> str:
        if len(self.findings) == 1:
            return self.findings[0].message
        names = [f.soname for f in self.findings if f.soname]
        what = "libraries" if len(names) == len(self.findings) else "findings"
        return f"{len(self.findings)} {what}" + (f": {', '.join(names)}" if names else "")


def groups(report: Report) -> list[Group]:
    order: list[tuple[str, str]] = []
    members: dict[tuple[str, str], list[Finding]] = {}
    for f in report.findings:
        key = (f.code, f.severity.value)
        if key not in members:
            order.append(key)
            members[key] = []
        members[key].append(f)
    out = []
    for code, severity in order:
        found = members[(code, severity)]
        if len(found) > 1 and report.fix is not None and code in FIXABLE:
            fixes: tuple[str, ...] = ("all of them: the one fix below",)
        else:
            fixes = tuple(dict.fromkeys(f.fix for f in found if f.fix))
        out.append(Group(code, severity, tuple(found), fixes))
    return out
