"""Docker architecture names to loader paths."""

from __future__ import annotations

from ldfix.loader.elf import machine_for_arch
from ldfix.loader.platform import ARCHES


def interp_for(arch: str) -> str | None:
    _, machine = machine_for_arch(arch)
    entry = ARCHES.get(machine)
    return entry[2] if entry else None
