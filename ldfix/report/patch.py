"""Reports of `ldfix patch`: the contract's JSON, markdown for a PR, SARIF on the Dockerfile's lines, a
plain/table view, and the hadolint-style one-line-per-finding text that goes to stderr next to a diff."""

from __future__ import annotations

import json
from typing import Any

from ldfix import __version__
from ldfix.dockerfile.result import PatchResult
from ldfix.report import Format
from ldfix.report.json import report_dict
from ldfix.report.sarif import document, results


def patch_dict(result: PatchResult) -> dict[str, Any]:
    plan = result.plan
    return {
        "schema_version": 1,
        "tool": {"name": "ldfix", "version": __version__},
        "dockerfile": {"path": result.path, "target_stage": result.target_stage, "base_image": result.base_image},
        "findings": [f.to_json() for f in result.findings],
        "scan": report_dict(result.scan) if result.scan else None,
        "changed": result.changed,
        "diff": result.diff,
        "fix": {
            "env_line": plan.env_line if plan and result.changed else None,
            "repaired_lines": list(plan.repaired) if plan and result.changed else [],
            "inserted_after_line": plan.inserted if plan and result.changed else None,
            "dropped_entries": list(plan.dropped) if plan and result.changed else [],
            "verified": result.verified if result.changed else None,
        },
        "notes": list(result.notes),
    }


def render_json(result: PatchResult) -> str:
    return json.dumps(patch_dict(result), indent=2) + "\n"


def render_sarif(result: PatchResult) -> str:
    return document(results(result.findings, result.path, result.scanned_ref, result.from_line or 1))


def finding_lines(result: PatchResult, show_info: bool = True) -> list[str]:
    """hadolint-style lines, `FILE:LINE CODE severity: message`, image findings named by the image and soname."""
    out = []
    for f in result.findings:
        if f.severity == "info" and not show_info:
            continue
        where = f"{f.file}:{f.line}" if f.file else f"{result.scanned_ref or 'image'} {f.soname or ''}".rstrip()
        out.append(f"{where} {f.code} {f.severity.value}: {f.message}")
    return out


def scan_summary(result: PatchResult) -> str | None:
    """One line on how the scanned image resolves its libraries, e.g. that everything goes through
    ld.so.cache whatever LD_LIBRARY_PATH says."""
    if result.scan is None:
        return None
    libs = result.scan.libraries
    resolved = [lib for lib in libs if lib.status == "resolved"]
    vias: dict[str, int] = {}
    for lib in resolved:
        via = lib.via.value if lib.via else "?"
        vias[via] = vias.get(via, 0) + 1
    how = ", ".join(f"{n} via {via}" for via, n in sorted(vias.items(), key=lambda kv: -kv[1]))
    unresolved = sum(1 for lib in libs if lib.status == "unresolved")
    checked = "checked by the image's own loader" if resolved and all(lib.verified for lib in resolved) else (
        "not checked by a loader")
    if not resolved and not unresolved:
        return f"{result.scanned_ref}: no CUDA library found to check"
    how = f" ({how})" if how else ""
    return f"{result.scanned_ref}: {len(resolved)} libraries resolve{how}, {unresolved} do not; {checked}"


def render_text(result: PatchResult) -> str:
    """Findings, notes and the diff as plain text (the table format when stdout is not a terminal)."""
    out = [f"ldfix patch {result.path} (stage {result.target_stage or '?'}, base {result.base_image or '?'})", ""]
    out += finding_lines(result) or ["no findings"]
    summary = scan_summary(result)
    out += [summary] if summary else []
    out += [f"note: {n}" for n in result.notes]
    out.append("")
    out.append(result.diff or result.unchanged_words() + "\n")
    return "\n".join(out).rstrip("\n") + "\n"


def render_markdown(result: PatchResult) -> str:
    out = [f"## ldfix patch: `{result.path}`", ""]
    out.append(f"Target stage `{result.target_stage}`, base image `{result.base_image}`" +
               (f", scanned `{result.scanned_ref}`." if result.scanned_ref else "."))
    out.append("")
    if result.findings:
        out += ["| where | code | severity | message |", "|---|---|---|---|"]
        for f in result.findings:
            where = f"line {f.line}" if f.file else f"`{f.soname}`" if f.soname else "image"
            message = f.message.replace("|", "\\|")
            out.append(f"| {where} | {f.code} | {f.severity.value} | {message} |")
        out.append("")
    else:
        out += ["No findings.", ""]
    if result.diff:
        verified = {True: "verified with the image's own loader", None: "not checked with a loader",
                    False: "not verified"}[result.verified]
        out += [f"### Change ({verified})", "", "```diff", result.diff.rstrip("\n"), "```", ""]
    else:
        words = result.unchanged_words()
        out += [words[0].upper() + words[1:] + ".", ""]
    for n in result.notes:
        out.append(f"> {n}")
    return "\n".join(out).rstrip("\n") + "\n"


RENDERERS = {Format.JSON: render_json, Format.MARKDOWN: render_markdown, Format.SARIF: render_sarif,
             Format.TABLE: render_text}
