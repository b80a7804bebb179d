from __future__ import annotations

import json
from typing import Any

from ldfix import __version__
from ldfix.diagnose.finding import Report


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "tool": {"name": "ldfix", "version": __version__},
        "image": report.image.to_json(),
        "libraries": [lib.to_json() for lib in report.libraries],
        "findings": [f.to_json() for f in report.findings],
        "fix": report.fix.to_json() if report.fix else None,
        "notes": list(report.notes),
        "frameworks": list(report.frameworks),
    }


def render(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2) + "\n"
