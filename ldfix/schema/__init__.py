"""JSON Schemas (draft 2020-12) of ldfix's JSON reports, shipped with the package."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load(name: str) -> dict[str, Any]:
    """`scan-report` or `patch-report`."""
    text = resources.files("ldfix.schema").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]
