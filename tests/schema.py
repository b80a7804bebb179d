"""Validate reports against the JSON Schemas the package ships (ldfix/schema)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from ldfix.schema import load

_SCAN = load("scan-report")
_PATCH = load("patch-report")
_REGISTRY = Registry().with_resources([
    ("scan-report.schema.json", Resource.from_contents(_SCAN)),
    ("https://ldfix.invalid/schema/scan-report.schema.json", Resource.from_contents(_SCAN)),
])


def validate_scan(report: Any) -> None:
    Draft202012Validator(_SCAN, registry=_REGISTRY).validate(report)


def validate_patch(report: Any) -> None:
    Draft202012Validator(_PATCH, registry=_REGISTRY).validate(report)
