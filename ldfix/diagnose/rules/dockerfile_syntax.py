"""DOCKERFILE_SYNTAX is found by the Dockerfile reader (dockerfile/lint.py `syntax_findings`), not over an
image; this module carries its code, severity and documentation like every other rule."""

from __future__ import annotations

from ldfix.diagnose.finding import Severity
from ldfix.diagnose.rules.base import Rule

RULE = Rule(
    "DOCKERFILE_SYNTAX", Severity.ERROR, "the Dockerfile has an error Docker would reject",
    "ldfix's own BuildKit-faithful parser (continuations, heredocs, directives, instruction names).",
    "Fix the reported line; ldfix patch does not edit such a file.",
    "RUN a \\   #comment (text after the continuation ends the RUN; the next line is an unknown instruction)")
