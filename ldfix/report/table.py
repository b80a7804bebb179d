"""The human view, drawn with rich into a string (colour only when asked for)."""

from __future__ import annotations

import io
import shutil

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ldfix.diagnose.finding import Report
from ldfix.report.frameworks import blocks, rows, title
from ldfix.report.group import groups

STYLE = {"resolved": "green", "unresolved": "bold red", "runtime-provided": "cyan"}
SEV = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _findings(report: Report) -> list[RenderableType]:
    if not report.findings:
        return [Text("\nNo findings: every library resolves.", "green")]
    parts: list[RenderableType] = [Text("\nFindings", "bold")]
    for g in groups(report):
        parts.append(Text.assemble((f"{g.code} ", "bold"), (f"{g.severity}: ", SEV.get(g.severity, "")), g.title))
        if len(g.findings) > 1:
            parts += [Text(f"  - {f.message}") for f in g.findings]
        parts += [Text(f"    fix: {fix}", "dim") for fix in g.fixes]
    return parts


def _frameworks(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for entry in blocks(report):
        parts.append(Text(f"\n{title(entry)}", "bold"))
        if entry.get("note"):
            parts.append(Text(f"  {entry['note']}", "dim"))
        table = Table(show_edge=False, header_style="bold")
        for column in ("library", "how", "status", "resolves to", "requester"):
            table.add_column(column)
        for soname, how, status, where, requester in rows(entry):
            table.add_row(soname, how, Text(status, STYLE.get(status, "")), where, requester)
        if table.row_count:
            parts.append(table)
    return parts


def renderable(report: Report) -> RenderableType:
    img = report.image
    head = Text.assemble(("ldfix ", "bold"), (img.ref, "bold"), f"  {img.platform}")
    if img.cuda_version:
        head.append(f"  CUDA {img.cuda_version}")
    if img.cudnn_version:
        head.append(f"  cuDNN {img.cudnn_version}")
    head.append(f"\nLD_LIBRARY_PATH={img.env.get('LD_LIBRARY_PATH', '')}")
    table = Table(show_edge=False, header_style="bold")
    for column in ("library", "status", "path", "via", "loader"):
        table.add_column(column)
    for lib in report.libraries:
        verified = {True: "agrees", False: "DISAGREES", None: "-"}[lib.verified]
        table.add_row(lib.soname, Text(lib.status.value, STYLE.get(lib.status.value, "")), lib.path or "-",
                      lib.via.value if lib.via else "-", verified)
    parts: list[RenderableType] = [head, table, *_frameworks(report), *_findings(report)]
    if report.fix:
        state = {True: "verified with the image's loader", False: "NOT confirmed by the image's loader",
                 None: "checked with the model only"}[report.fix.verified]
        parts.append(Text(f"\nFix ({state}): {report.fix.reason}", "bold"))
        parts.append(Text(report.fix.dockerfile.rstrip("\n")))
    for note in report.notes:
        parts.append(Text(f"note: {note}", "dim"))
    return Group(*parts)


def render(report: Report, color: bool) -> str:
    buf = io.StringIO()
    console = Console(file=buf, no_color=not color, highlight=False, force_terminal=color or None,
                      width=shutil.get_terminal_size().columns if color else 160, soft_wrap=False)
    console.print(renderable(report))
    return buf.getvalue()
