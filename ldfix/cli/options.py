"""Every option `scan` and `patch` share, written once as an Annotated alias, with the metavars the README
uses. Values are parsed into domain types (Platform, FailOn, Format) at the edge, once."""

from __future__ import annotations

from typing import Annotated

import typer

from ldfix.diagnose.finding import FailOn
from ldfix.errors import UsageError
from ldfix.image.refs import Platform, parse_platform
from ldfix.report import Format

Lib = Annotated[list[str], typer.Option("--lib", metavar="SONAME",
                                        help="also check this soname, e.g. libcudnn.so.8 (repeatable)")]
Env = Annotated[list[str], typer.Option("--env", metavar="K=V",
                                        help="set K=V in the image env before the scan, over the image's own "
                                             "(every transport; dir: images have no other env) (repeatable)")]
For = Annotated[list[str], typer.Option("--for", metavar="SPEC",
                                        help="check what a framework release asks for, e.g. tensorflow==2.6.0 "
                                             "(repeatable)")]
PlatformOpt = Annotated[str | None, typer.Option("--platform", metavar="OS/ARCH",
                                                 help="the platform to pull or inspect: ARCH, OS/ARCH or "
                                                      "OS/ARCH/VARIANT, as for docker")]
FormatOpt = Annotated[Format | None, typer.Option("--format", metavar="FORMAT", case_sensitive=False,
                                                  help="table | json | markdown | sarif")]
Output = Annotated[str | None, typer.Option("--output", metavar="FILE",
                                            help="write the report to FILE (atomically) instead of stdout; "
                                                 "json unless --format says otherwise")]
FailOnOpt = Annotated[FailOn, typer.Option("--fail-on", metavar="SEVERITY", case_sensitive=False,
                                           help="lowest severity that makes the exit code 1: error | warning | "
                                                "info | none")]
NoPull = Annotated[bool, typer.Option("--no-pull", help="never contact a registry: the image must be local")]
Static = Annotated[bool, typer.Option("--static", help="never run anything from the image (model only; "
                                                       "libraries[].verified is null)")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress output on stderr")]
Mirror = Annotated[list[str], typer.Option("--registry-mirror", metavar="URL",
                                           help="fetch Docker Hub images from this mirror first (repeatable; also "
                                           "LDFIX_REGISTRY_MIRROR, comma-separated), as dockerd's registry-mirrors")]
Cache = Annotated[str | None, typer.Option("--cache", metavar="DIR",
                                           help="keep registry layers and what was read from them by digest, so "
                                           "later scans download and read only new layers")]


def mirrors_of(given: list[str]) -> tuple[str, ...]:
    """--registry-mirror values, then LDFIX_REGISTRY_MIRROR's; each must be an http(s) URL."""
    import os

    from ldfix.errors import UsageError

    found = list(given) + [m for m in os.environ.get("LDFIX_REGISTRY_MIRROR", "").split(",") if m.strip()]
    for m in found:
        if not m.strip().startswith(("http://", "https://")):
            raise UsageError(f"--registry-mirror {m!r} is not an http(s) URL", "for example https://mirror.gcr.io")
    return tuple(m.strip().rstrip("/") for m in found)


def parse_env(pairs: list[str], option: str = "--env") -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UsageError(f"{option} {pair!r} is not K=V", f"for example {option} "
                             "LD_LIBRARY_PATH=/usr/local/cuda/lib64")
        env[key] = value
    return env


def platform_of(text: str | None) -> Platform | None:
    return parse_platform(text) if text else None
