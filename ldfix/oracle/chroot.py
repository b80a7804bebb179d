"""The loader of a root filesystem directory, run in a chroot (needs root)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping

from ldfix.oracle.base import Trace, parse_fatal, parse_trace, probe_bytes, trace_env


class ChrootOracle:
    """The loader of a root filesystem directory, run in a chroot (needs root). The probe is written to
    the root's /tmp (or /) under a unique name and removed afterwards."""

    can_overlay = False  # nothing to build a throwaway layer with: fixes needing RUN lines are model-checked

    def __init__(self, root: str, interp: str, timeout: float = 30) -> None:
        self.root = os.path.abspath(root)
        self.interp = interp
        self.timeout = timeout

    def warm(self, env: Mapping[str, str], cwd: str) -> None:
        return None  # a chroot starts in no time: nothing to prepare

    def release(self) -> None:
        return None

    @staticmethod
    def available(root: str, interp: str) -> bool:
        return hasattr(os, "geteuid") and os.geteuid() == 0 and os.path.lexists(os.path.join(root, interp.lstrip("/")))

    def _run(self, args: list[str], env: Mapping[str, str], cwd: str) -> subprocess.CompletedProcess[str]:
        root = self.root

        def enter() -> None:
            os.chroot(root)
            try:
                os.chdir(cwd)
            except OSError:
                os.chdir("/")

        return subprocess.run([self.interp, *args], preexec_fn=enter, env=dict(env), capture_output=True,
                              text=True, timeout=self.timeout, errors="replace")

    def help_text(self) -> str | None:
        try:
            proc = self._run(["--help"], {}, "/")
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout if proc.returncode == 0 else None

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        tmp = os.path.join(self.root, "tmp")
        where = tmp if os.path.isdir(tmp) and not os.path.islink(tmp) else self.root
        fd, host_path = tempfile.mkstemp(prefix=".ldfix-", suffix=".so", dir=where)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(probe_bytes(needed))
            inside = "/" + os.path.relpath(host_path, self.root)
            proc = self._run([inside], trace_env(env), cwd)
        finally:
            os.unlink(host_path)
        fatal = parse_fatal(proc.stderr) if proc.returncode != 0 else None
        return Trace(parse_trace(proc.stdout, self.interp), fatal, proc.returncode)

    def trace_with_overlay(self, lines: list[str], needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        raise NotImplementedError("a chroot oracle cannot run Dockerfile lines; check can_overlay first")
