from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ldfix import __version__
from ldfix.diagnose.finding import Finding, Report
from ldfix.diagnose.rules import REGISTRY

LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def results(findings: Sequence[Finding], artifact: str | None, image_ref: str | None, default_line: int = 1
            ) -> list[dict[str, Any]]:
    """SARIF results; a finding without a file of its own is placed on `artifact` at `default_line` (for
    `ldfix patch`: the FROM line of the image it is about)."""
    out = []
    for f in findings:
        res: dict[str, Any] = {"ruleId": f.code, "level": LEVELS[f.severity.value],
                               "message": {"text": f.message}}
        if f.file:
            res["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": f.file},
                                                      "region": {"startLine": f.line or 1,
                                                                 **({"startColumn": f.column} if f.column else {})}}}]
        elif artifact:
            res["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": artifact},
                                                      "region": {"startLine": default_line}}}]
        else:
            res["locations"] = [{"logicalLocations": [{"name": image_ref or "image", "kind": "module"}]}]
        out.append(res)
    return out


def document(res: list[dict[str, Any]]) -> str:
    rules = [{"id": c.code, "name": c.code.title().replace("_", ""), "shortDescription": {"text": c.title},
              "fullDescription": {"text": c.detect}, "help": {"text": c.fix},
              "defaultConfiguration": {"level": LEVELS[c.severity.value]}} for c in REGISTRY]
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "ldfix", "version": __version__, "rules": rules}}, "results": res}]}
    return json.dumps(doc, indent=2) + "\n"


def render(report: Report) -> str:
    return document(results(report.findings, None, report.image.ref))
