"""The human view, drawn with rich by the CLI (this module builds renderables, it never prints)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ldfix.diagnose.finding import Report

STYLE = {"resolved": "green", "unresolved": "bold red", "runtime-provided": "cyan"}
SEV = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def renderable(report: Report) -> RenderableType:
    img = report.image
    head = Text.assemble(("ldfix ", "bold"), (img.ref, "bold"), f"  {img.platform}")
    if img.cuda_version:
        head.append(f"  CUDA {img.cuda_version}")
    if img.cudnn_version:
        head.append(f"  cuDNN {img.cudnn_version}")
    head.append(f"\nLD_LIBRARY_PATH={img.env.get('LD_LIBRARY_PATH', '')}")
    table = Table(show_edge=False, header_style="bold")
    table.add_column("library")
    table.add_column("status")
    table.add_column("path")
    table.add_column("via")
    table.add_column("loader")
    for lib in report.libraries:
        verified = {True: "agrees", False: "DISAGREES", None: "-"}[lib.verified]
        table.add_row(lib.soname, Text(lib.status, STYLE.get(lib.status, "")), lib.path or "-", lib.via or "-",
                      verified)
    parts: list[RenderableType] = [head, table]
    if report.findings:
        parts.append(Text("\nFindings", "bold"))
        for f in report.findings:
            line = Text.assemble((f"{f.code} ", "bold"), (f"{f.severity}: ", SEV.get(f.severity, "")), f.message)
            parts.append(line)
            if f.fix:
                parts.append(Text(f"    fix: {f.fix}", "dim"))
    else:
        parts.append(Text("\nNo findings: every library resolves.", "green"))
    if report.fix:
        state = {True: "verified with the image's loader", False: "NOT confirmed by the image's loader",
                 None: "checked with the model only"}[report.fix.verified]
        parts.append(Text(f"\nFix ({state}): {report.fix.reason}", "bold"))
        parts.append(Text(report.fix.dockerfile.rstrip("\n")))
    for note in report.notes:
        parts.append(Text(f"note: {note}", "dim"))
    return Group(*parts)
