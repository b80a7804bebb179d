"""The Oracle protocol: ask the image's own `ld.so`, in trace mode, about a generated probe whose DT_NEEDED
entries are the wanted sonames, and parse what it prints (loader reference §8). Runners differ (chroot.py for
`dir:`, docker.py for daemon images); the probe, the parsing and the protocol are here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ldfix.loader.elfwrite import build_shared_object


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
    """The calls the scan and the fix verifier make of an image's loader."""

    interp: str
    can_overlay: bool  # whether trace_with_overlay can build a throwaway image with extra RUN lines

    def help_text(self) -> str | None:
        """`ld.so --help` (its search path and hwcaps), or None when it cannot be run."""

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        """What the loader does with a probe that needs `needed`, in `env` and `cwd`."""

    def trace_with_overlay(self, lines: list[str], needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        """The same after `lines` (Dockerfile instructions) ran on top of the image; only when can_overlay."""

    def warm(self, env: Mapping[str, str], cwd: str) -> None:
        """Get ready for a `trace` in `env` and `cwd` while the caller does other work (the image is being
        indexed): a runner may create its container now."""

    def release(self) -> None:
        """Drop whatever `warm` prepared and `trace` did not use."""


def probe_bytes(needed: list[str]) -> bytes:
    """The probe shared object: no code, one DT_NEEDED per wanted name."""
    return build_shared_object(None, needed)


def trace_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a trace runs in: the image's, less what would change the answer, plus trace mode."""
    out = {k: v for k, v in env.items() if k not in ("LD_PRELOAD", "LD_DEBUG")}
    out["LD_TRACE_LOADED_OBJECTS"] = "1"
    return out


