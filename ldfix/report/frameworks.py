"""One block per framework for the human formats: its version, the CUDA it was built for, and each library
it loads, as it loads it (from which of its objects, how, and where that lands or why not)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from ldfix.diagnose.finding import Report


def title(entry: dict[str, Any]) -> str:
    where = f" at {entry['location']}" if entry.get("location") else " (--for: from ldfix's data, not installed)"
    built = f", built for CUDA {entry['built_for_cuda']}" if entry.get("built_for_cuda") else ""
    return f"{entry['framework']} {entry['version']}{where}{built}"


def rows(entry: dict[str, Any]) -> Iterator[tuple[str, str, str, str, str]]:
    """(library, how, status, where it resolves or why not, requester file name)."""
    for lib in entry.get("libraries", []):
        where = lib.get("realpath") or lib.get("path") or "; ".join(lib.get("tried", [])[-1:]) or "not found"
        how = lib["how"] + (f" via {lib['via']}" if lib.get("via") else "")
        yield lib["soname"], how, lib["status"], where, posixpath.basename(lib.get("requester") or "")
    for soname in entry.get("sonames", []):  # --for: what that release asks for (resolved as targets above)
        yield soname, "needed", "see libraries", "-", "-"


def blocks(report: Report) -> list[dict[str, Any]]:
    return [e for e in report.frameworks if e.get("libraries") or e.get("sonames") or e.get("note")]
