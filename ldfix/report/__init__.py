"""Pure formatters. A Format maps to its renderer here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ldfix.image.strenum import StrEnum

if TYPE_CHECKING:
    from ldfix.diagnose.finding import Report


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"


def renderer(fmt: Format) -> Callable[[Report, bool], str]:
    """`render(report, color) -> str` for a format (only the table uses colour)."""
    if fmt is Format.JSON:
        from ldfix.report import json

        return lambda report, _color: json.render(report)
    if fmt is Format.MARKDOWN:
        from ldfix.report import markdown

        return lambda report, _color: markdown.render(report)
    if fmt is Format.SARIF:
        from ldfix.report import sarif

        return lambda report, _color: sarif.render(report)
    from ldfix.report import table

    return table.render
