"""The program: the commands of app.py and patch_cmd.py, and what happens on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import sys

from ldfix.cli import patch_cmd
from ldfix.cli.app import app
from ldfix.errors import Interrupted

__all__ = ["app", "main", "patch_cmd"]


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main() -> None:
    import gc
    import signal

    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)  # CI cancellations and `docker stop` send SIGTERM
    try:
        app()
    except (Interrupted, KeyboardInterrupt):
        if "ldfix.image.docker" in sys.modules:
            from ldfix.image.docker import interrupt_cleanup

            interrupt_cleanup()
        sys.stderr.write("ldfix: interrupted; every container ldfix created was removed\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # do not wait for a loader thread still blocked on the daemon
    finally:
        # what is left is freed with the process: the collector's passes over every object at interpreter
        # exit cost a scan about 0.06-0.1 s (atexit handlers and thread joins still run)
        gc.freeze()
