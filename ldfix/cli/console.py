"""Terminal concerns: where output goes, colour, progress."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


def color_ok(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, no_color=not color_ok(sys.stderr), highlight=False,
                   force_terminal=color_ok(sys.stderr) or None)
