"""A rule: one finding code, its default severity (root causes §3), what `explain CODE` says about it, and
its check. A rule either checks the whole scan (`check`) or explains why one wanted name does not resolve
(`explain`); the causes are tried in the registry's order and the first that applies is the finding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding, Severity
from ldfix.loader.search import Resolution

Check = Callable[[ScanContext], list[Finding]]
Explain = Callable[[ScanContext, str, Resolution], "Finding | None"]


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    title: str
    detect: str
    fix: str
    example: str
    check: Check | None = field(default=None, compare=False)
    explain: Explain | None = field(default=None, compare=False)

    def finding(self, message: str, severity: Severity | None = None, **fields: Any) -> Finding:
        """A finding of this rule; `severity` only where root causes §3 names the exception."""
        return Finding(self.code, severity or self.severity, message, **fields)
