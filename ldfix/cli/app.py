"""The command line: the only place that knows terminals, progress and exit codes."""

from __future__ import annotations

import io
import os
import sys
import traceback
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ldfix import __version__
from ldfix.diagnose.codes import CODES
from ldfix.diagnose.finding import Report, severity_rank
from ldfix.errors import Interrupted, LdfixError, UsageError
from ldfix.image.base import ImageView

if TYPE_CHECKING:
    from ldfix.oracle.ldso import Oracle

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Explains why a CUDA container cannot load its shared libraries, and writes a verified fix.")


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    sarif = "sarif"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"
    info = "info"
    none = "none"


def _fail(err: LdfixError) -> NoReturn:
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
            _fail(LdfixError(f"cannot write {output}: {err.strerror or err}", "check the path and permissions"))
    elif text:
        sys.stdout.write(text)
        sys.stdout.flush()


def _parse_env(pairs: list[str], option: str = "--env") -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"{option} {pair!r} is not KEY=VALUE", f"for example {option} "
                "LD_LIBRARY_PATH=/usr/local/cuda/lib64")
        key, value = pair.split("=", 1)
        env[key] = value
    return env


def open_image(ref: str, env: dict[str, str], platform: str | None, no_pull: bool, quiet: bool) -> ImageView:
    from ldfix.image.refs import parse_ref

    parsed = parse_ref(ref)
    if parsed.transport == "dir":
        from ldfix.image.rootfs import open_rootfs

        arch = platform.split("/")[1] if platform and "/" in platform else "amd64"
        return open_rootfs(parsed.value, env, env.pop("WORKDIR", "/") if "WORKDIR" in env else "/", arch)
    if parsed.transport == "daemon":
        from ldfix.image.docker import open_daemon_image

        view = open_daemon_image(parsed, platform, no_pull, quiet, None if quiet else _lazy_progress())
        if env:
            view.config = type(view.config)(**{**view.config.__dict__, "env": {**view.config.env, **env}})
        return view
    from ldfix.image.archive import open_archive

    view = open_archive(parsed.transport, parsed.value)
    if env:
        view.config = type(view.config)(**{**view.config.__dict__, "env": {**view.config.env, **env}})
    return view


def _lazy_progress() -> Callable[[dict[str, Any]], None]:
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
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=stderr_console(),
                        transient=True)
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


def _render(report: Report, fmt: Format) -> str:
    if fmt is Format.json:
        from ldfix.report.json import render as rj

        return rj(report)
    if fmt is Format.markdown:
        from ldfix.report.markdown import render as rm

        return rm(report)
    if fmt is Format.sarif:
        from ldfix.report.sarif import render as rs

        return rs(report)
    from ldfix.cli.console import stdout_console
    from ldfix.report.table import renderable

    buf = io.StringIO()
    console = stdout_console(buf)
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        console = stdout_console(None)
        console.print(renderable(report))
        return ""
    console.print(renderable(report))
    return buf.getvalue()


@app.command()
def scan(
    image: Annotated[str, typer.Argument(help="NAME:TAG, NAME@sha256:..., dir:PATH (more forms in the README)")],
    lib: Annotated[list[str], typer.Option("--lib", help="also check this soname (repeatable)")] = [],  # noqa: B006
    for_: Annotated[list[str], typer.Option("--for", help="check what a framework asks for, e.g. tensorflow==2.6.0 "
                                             "(repeatable)")] = [],  # noqa: B006
    env: Annotated[list[str], typer.Option("--env", help="KEY=VALUE for the image env (dir: images)")] = [],  # noqa: B006
    platform: Annotated[str | None, typer.Option("--platform", help="OS/ARCH to pull or inspect")] = None,
    fmt: Annotated[Format | None, typer.Option("--format", help="table | json | markdown | sarif")] = None,
    output: Annotated[str | None, typer.Option("--output", help="write the report to FILE")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="lowest severity that fails the run")] = FailOn.error,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="never contact a registry")] = False,
    static: Annotated[bool, typer.Option("--static", help="never run anything from the image")] = False,
    explicit: Annotated[bool, typer.Option("--explicit", help="also spell out dirs reached via ld.so.cache")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    """Diagnose shared-library resolution in an image."""
    from ldfix.diagnose.engine import scan as run_scan

    try:
        wanted, frameworks = _framework_targets(list(lib), for_)
        view = open_image(image, _parse_env(env), platform, no_pull, quiet)
        oracle = None if static else _oracle_for(view)
        report = run_scan(view, wanted, oracle, explicit, fail_on.value)
        report.frameworks = frameworks
    except LdfixError as err:
        _fail(err)
    chosen = fmt or (Format.table if sys.stdout.isatty() else Format.json)
    text = _render(report, chosen)
    emit(text, output)
    _cleanup(view)
    threshold = severity_rank(fail_on.value) if fail_on is not FailOn.none else 99
    if any(severity_rank(f.severity) >= threshold for f in report.findings):
        raise typer.Exit(1)


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
        frameworks.append({"spec": spec, "framework": needs.name, "version": needs.version,
                           "built_for_cuda": needs.cuda, "sonames": list(needs.sonames)})
        out += [s for s in needs.sonames if s not in out]
    return out, frameworks


def _oracle_for(view: ImageView) -> Oracle | None:
    if view.oracle is not None:
        if _native(view.config.architecture):
            return view.oracle  # type: ignore[return-value]
        view.notes.append(f"the image is {view.config.platform}, not this machine's architecture: scanned "
                          "statically, libraries[].verified is null")
        return None
    if view.ref.startswith("dir:"):
        from ldfix.elfarch import interp_for
        from ldfix.oracle.ldso import ChrootOracle

        root = view.ref[4:]
        interp = interp_for(view.config.architecture)
        if interp and _native(view.config.architecture) and ChrootOracle.available(root, interp):
            return ChrootOracle(root, interp)
        view.notes.append("the image's loader was not asked (needs root and a loader for this machine's "
                          "architecture): libraries[].verified is null")
    return None


def _native(arch: str) -> bool:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine) == arch


def _cleanup(view: ImageView) -> None:
    for owner in (view, view.fs):
        closer = getattr(owner, "close", None)
        if callable(closer):
            closer()


@app.command()
def explain(code: Annotated[str, typer.Argument(help="a finding code, e.g. PATH_MISSING")]) -> None:
    """What a finding code means, how it is detected, how it is fixed."""
    entry = CODES.get(code.upper())
    if entry is None:
        _fail(UsageError(f"unknown finding code {code!r}", "known codes: " + ", ".join(CODES)))
    sys.stdout.write(f"{entry.code} ({entry.severity})\n  {entry.title}\n\nHow it is detected:\n  {entry.detect}\n\n"
                     f"How it is fixed:\n  {entry.fix}\n\nExample:\n  {entry.example}\n")


def _version_cb(value: bool) -> None:
    if value:
        sys.stdout.write(f"ldfix {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version_cb, is_eager=True,
                                                help="print the version")] = False) -> None:
    """ldfix: why a CUDA container cannot load libcudnn.so.8, and the fix."""


def _terminate(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main() -> None:
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


from ldfix.cli import patch_cmd  # noqa: E402,F401  (registers `ldfix patch`)
