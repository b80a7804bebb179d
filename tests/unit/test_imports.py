"""Imports run one way (ARCHITECTURE.md): a room imports only the rooms below it, and no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "ldfix"
# lowest first; a module may import its own room and any room before it in this list
LAYERS = ["errors", "image", "loader", "elfarch", "oracle", "knowledge", "schema", "diagnose", "frameworks", "fix",
          "dockerfile",
          "report", "api", "cli"]
TOP = {"__init__", "__main__"}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ldfix"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("ldfix"))
        out[name] = found
    return out


def test_every_import_goes_down() -> None:
    modules = _imports()
    bad = []
    for module, imported in modules.items():
        room = _room(module)
        if room in TOP or module == "ldfix":
            continue
        for target in imported:
            if target not in modules or target == "ldfix":
                continue  # `from ldfix.x import name` also lists x.name; only modules count
            other = _room(target)
            if other in TOP or other == room:
                continue
            if LAYERS.index(other) > LAYERS.index(room):
                bad.append(f"{module} imports {target} ({room} -> {other} goes up)")
    assert not bad, "\n".join(bad)


def test_no_import_circle() -> None:
    modules = _imports()
    graph = {m: {t for t in ts if t in modules and t != m and t != "ldfix"} for m, ts in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                circles.append(" -> ".join([*stack[stack.index(t):], t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)
    assert not circles, "\n".join(circles)


def test_image_knows_nothing_of_the_loader_or_the_oracle() -> None:
    for module, imported in _imports().items():
        if _room(module) == "image":
            assert not [t for t in imported if t.startswith(("ldfix.loader", "ldfix.oracle"))], module
