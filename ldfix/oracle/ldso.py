"""Run the image's `ld.so` in trace mode on a generated probe whose DT_NEEDED entries are the wanted
sonames, and parse what it prints (loader reference §8). Runners differ (chroot for `dir:`, a created
container for daemon images); the probe and the parsing are shared."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ldfix.loader.elfwrite import build_shared_object

PROBE_NAME = "ldfix-probe.so"


@dataclass(frozen=True)
class Trace:
    listing: list[tuple[str, str | None]]
    fatal: str | None
    exit_code: int

    def paths(self) -> dict[str, str | None]:
        """The path the loader gave each name the first time it was listed (None: not found)."""
        first: dict[str, str | None] = {}
        for name, path in self.listing:
            first.setdefault(name, path)
        return first


def parse_trace(stdout: str, interp: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("linux-vdso") or line.startswith("linux-gate") or line == "statically linked":
            continue
        if " => " in line:
            name, rest = line.split(" => ", 1)
            out.append((name, None if rest.startswith("not found") else rest.rsplit(" (0x", 1)[0]))
        else:
            name = line.rsplit(" (0x", 1)[0]
            if name == interp or (name.startswith("/lib") and "ld-linux" in name):
                continue
            out.append((name, name))
    return out


def parse_fatal(stderr: str) -> str | None:
    marker = "error while loading shared libraries: "
    at = stderr.find(marker)
    return stderr[at + len(marker):].strip().splitlines()[0] if at >= 0 else (stderr.strip() or None)


class Oracle(Protocol):
    interp: str

    def help_text(self) -> str | None: ...

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace: ...


class ChrootOracle:
    """The loader of a root filesystem directory, run in a chroot (needs root). The probe is written to
    the root's /tmp (or /) under a unique name and removed afterwards."""

    def __init__(self, root: str, interp: str, timeout: float = 30) -> None:
        self.root = os.path.abspath(root)
        self.interp = interp
        self.timeout = timeout

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
                fh.write(build_shared_object(None, needed))
            inside = "/" + os.path.relpath(host_path, self.root)
            run_env = {k: v for k, v in env.items() if k not in ("LD_PRELOAD", "LD_DEBUG")}
            run_env["LD_TRACE_LOADED_OBJECTS"] = "1"
            proc = self._run([inside], run_env, cwd)
        finally:
            os.unlink(host_path)
        fatal = parse_fatal(proc.stderr) if proc.returncode != 0 else None
        return Trace(parse_trace(proc.stdout, self.interp), fatal, proc.returncode)
