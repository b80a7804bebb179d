"""Terminal concerns: where output goes, colour, progress."""

from __future__ import annotations

import os
import sys

from rich.console import Console


def color_ok(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def stderr_console() -> Console:
    return Console(stderr=True, no_color=not color_ok(sys.stderr), highlight=False,
                   force_terminal=color_ok(sys.stderr) or None)


def stdout_console(file: object | None = None) -> Console:
    target = file or sys.stdout
    return Console(file=target, no_color=not color_ok(target), highlight=False,  # type: ignore[arg-type]
                   force_terminal=color_ok(target) or None, width=160 if not color_ok(target) else None,
                   soft_wrap=False)
