"""The command line: the only place that knows terminals, progress and exit codes. Commands parse their
options into domain values and call the composition root (ldfix/api.py)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from ldfix import __version__
from ldfix.cli import options as opt
from ldfix.diagnose.finding import FailOn
from ldfix.errors import LdfixError, UsageError
from ldfix.report import Format, renderer


def _plain_argument_help() -> None:
    """Show arguments as the README writes them (`IMAGE`, `DOCKERFILE...`), not typer's `{IMAGE}` in the usage
    line and `IMAGE <str>` in the list: typer offers no setting for either, so its display methods are
    replaced for arguments that have a metavar (where the release has them)."""
    from typer.core import TyperArgument

    usage = getattr(TyperArgument, "get_usage_pieces", None)
    rich_type = getattr(TyperArgument, "display_type_rich", None)
    if usage is not None:
        def usage_pieces(self: TyperArgument, ctx: Any) -> list[str]:
            return [self.metavar] if self.metavar is not None else usage(self, ctx)

        TyperArgument.get_usage_pieces = usage_pieces  # type: ignore[method-assign,unused-ignore]
    if rich_type is not None:
        def type_name(self: TyperArgument, ctx: Any) -> str | None:
            return None if self.metavar is not None else rich_type(self, ctx)

        setattr(TyperArgument, "display_type_rich", type_name)  # noqa: B010 (absent from some typer releases)


_plain_argument_help()
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Explains why a CUDA container cannot load its shared libraries, and writes a verified fix.")


def fail(err: LdfixError) -> NoReturn:
    if os.environ.get("LDFIX_DEBUG"):
        traceback.print_exc()
    msg = f"ldfix: error: {err.message}"
    if err.hint:
        msg += f" (hint: {err.hint})"
    sys.stderr.write(" ".join(msg.split("\n")) + "\n")  # one line, never wrapped
    raise typer.Exit(err.exit_code)


def emit(text: str, output: str | None) -> None:
    """The report to --output FILE (atomically) or to stdout."""
    if output:
        from ldfix.fix.files import atomic_write

        try:
            atomic_write(output, text.encode("utf-8"))
        except OSError as err:
            fail(LdfixError(f"cannot write {output}: {err.strerror or err}", "check the path and permissions"))
    elif text:
        sys.stdout.write(text)
        sys.stdout.flush()


def chosen_format(fmt: Format | None, output: str | None) -> Format:
    """--format, else json into a file or a pipe, table on a terminal."""
    if fmt is not None:
        return fmt
    return Format.TABLE if output is None and sys.stdout.isatty() else Format.JSON


def color_for(output: str | None) -> bool:
    from ldfix.cli.console import color_ok

    return output is None and color_ok(sys.stdout)


def lazy_progress() -> Callable[[dict[str, Any]], None]:
    """The progress display is built at the first pull event, so a scan that pulls nothing pays nothing."""
    real: list[Callable[[dict[str, Any]], None]] = []

    def on_event(event: dict[str, Any]) -> None:
        if not real:
            real.append(_pull_progress())
        real[0](event)

    return on_event


def _pull_progress() -> Callable[[dict[str, Any]], None]:
    """A callback that turns the daemon's pull events into one rich bar per layer, on stderr."""
    from ldfix.cli.console import color_ok, stderr_console

    if not color_ok(sys.stderr):
        def plain(event: dict[str, Any]) -> None:
            status = event.get("status")
            if status and not event.get("id"):
                sys.stderr.write(f"{status}\n")
        return plain
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=stderr_console(), transient=True)
    tasks: dict[str, TaskID] = {}

    def on_event(event: dict[str, Any]) -> None:
        layer = event.get("id")
        status = str(event.get("status", ""))
        if not layer or not isinstance(layer, str) or status.startswith("Pulling from"):
            return
        if not progress.live.is_started:
            progress.start()
        detail = event.get("progressDetail") or {}
        if layer not in tasks:
            tasks[layer] = progress.add_task(layer, total=None)
        task = tasks[layer]
        if isinstance(detail, dict) and detail.get("total"):
            progress.update(task, total=detail["total"], completed=detail.get("current", 0),
                            description=f"{layer} {status}")
        if status in ("Download complete", "Pull complete", "Already exists"):
            t = progress.tasks[task].total or 1
            progress.update(task, completed=t, total=t, description=f"{layer} {status}")
        if status == "Pull complete" and all(progress.tasks[i].finished for i in tasks.values()):
            progress.stop()

    return on_event



def _say(line: str) -> None:
    sys.stderr.write(f"ldfix: {line}\n")


@app.command()
def scan(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="NAME:TAG, NAME@sha256:..., registry:NAME:TAG, "
                                         "dir:PATH, docker-archive:PATH, oci-archive:PATH, oci-dir:PATH")],
    lib: opt.Lib = [],  # noqa: B006
    for_: opt.For = [],  # noqa: B006
    env: opt.Env = [],  # noqa: B006
    platform: opt.PlatformOpt = None,
    fmt: opt.FormatOpt = None,
    output: opt.Output = None,
    fail_on: opt.FailOnOpt = FailOn.ERROR,
    no_pull: opt.NoPull = False,
    static: opt.Static = False,
    explicit: Annotated[bool, typer.Option("--explicit", help="the fix also spells out the directories reached "
                                           "through ld.so.cache (same files, pinned order)")] = False,
    registry_mirror: opt.Mirror = [],  # noqa: B006
    cache: opt.Cache = None,
    quiet: opt.Quiet = False,
) -> None:
    """Diagnose shared-library resolution in an image."""
    from ldfix import api
    from ldfix.diagnose.scan import ScanOptions
    from ldfix.image.refs import parse_ref

    try:
        wanted, frameworks = _framework_targets(list(lib), for_)
        source = api.Source(parse_ref(image), opt.parse_env(env), opt.platform_of(platform), no_pull, static,
                            None if quiet else lazy_progress(), opt.mirrors_of(registry_mirror), cache,
                            say=_say)
        report = api.scan(source, ScanOptions(tuple(wanted), fail_on, explicit, tuple(frameworks)))
    except LdfixError as err:
        fail(err)
    chosen = chosen_format(fmt, output)
    emit(renderer(chosen)(report, color_for(output)), output)
    raise typer.Exit(1 if report.blocking() else 0)


def _framework_targets(libs: list[str], specs: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    from ldfix.knowledge import framework_needs

    out = list(libs)
    frameworks = []
    for spec in specs:
        try:
            needs = framework_needs(spec)
        except ValueError as err:
            raise UsageError(f"--for {spec}: {err}",
                             "for example --for tensorflow==2.6.0 or --for torch==2.3.1") from None
        frameworks.append({"spec": spec, "framework": needs.name, "version": needs.version, "source": "for",
                           "location": None, "built_for_cuda": needs.cuda, "sonames": list(needs.sonames)})
        out += [s for s in needs.sonames if s not in out]
    return out, frameworks


@app.command()
def explain(code: Annotated[str, typer.Argument(metavar="CODE", help="a finding code, e.g. PATH_MISSING")]) -> None:
    """What a finding code means, how it is detected, how it is fixed."""
    from ldfix.diagnose.rules import BY_CODE

    entry = BY_CODE.get(code.upper())
    if entry is None:
        fail(UsageError(f"unknown finding code {code!r}", "known codes: " + ", ".join(BY_CODE)))
    sys.stdout.write(f"{entry.code} ({entry.severity.value})\n  {entry.title}\n\nHow it is detected:\n  "
                     f"{entry.detect}\n\nHow it is fixed:\n  {entry.fix}\n\nExample:\n  {entry.example}\n")


def _version_cb(value: bool) -> None:
    if value:
        sys.stdout.write(f"ldfix {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version_cb, is_eager=True,
                                                help="print the version")] = False) -> None:
    """ldfix: why a CUDA container cannot load libcudnn.so.8, and the fix."""
