"""`ldfix patch DOCKERFILE`: the command line of the Dockerfile job (ldfix/dockerfile/job.py)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ldfix.cli import options as opt
from ldfix.cli.app import app, emit, fail, lazy_progress
from ldfix.diagnose.finding import FailOn
from ldfix.errors import LdfixError, UsageError
from ldfix.image.base import ImageView
from ldfix.report import Format

if TYPE_CHECKING:
    from ldfix.dockerfile.result import PatchResult
    from ldfix.oracle.base import Oracle


@app.command()
def patch(
    dockerfiles: Annotated[list[str], typer.Argument(metavar="DOCKERFILE...", help="the Dockerfile to check or fix "
                                                     "(several with --check or --write, as pre-commit passes them)")],
    write: Annotated[bool, typer.Option("--write", help="apply the fix in place (atomic)")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the file needs a fix")] = False,
    overlay: Annotated[str | None, typer.Option("--overlay", metavar="FILE",
                                                help="write FROM <built image> + fix lines to FILE")] = None,
    env_line: Annotated[bool, typer.Option("--env-line", help="print only the ENV LD_LIBRARY_PATH line")] = False,
    image: Annotated[str | None, typer.Option("--image", metavar="IMAGE",
                                              help="scan this built image instead of the base")] = None,
    build: Annotated[bool, typer.Option("--build", help="docker build the file first and scan the result")] = False,
    target: Annotated[str | None, typer.Option("--target", metavar="STAGE",
                                               help="the stage to patch (default: the last)")] = None,
    build_arg: Annotated[list[str], typer.Option("--build-arg", metavar="K=V",
                                                 help="a build argument, as for docker build (repeatable)")
                         ] = [],  # noqa: B006
    base_env: Annotated[list[str], typer.Option("--base-env", metavar="K=V",
                                                help="the base image's env, given instead of opening the base "
                                                     "image; no daemon is asked (repeatable)")] = [],  # noqa: B006
    lib: opt.Lib = [],  # noqa: B006
    platform: opt.PlatformOpt = None,
    fmt: Annotated[Format | None, typer.Option("--format", metavar="FORMAT", case_sensitive=False,
                                               help="table | json | markdown | sarif (default: a unified diff)")
                   ] = None,
    output: opt.Output = None,
    fail_on: opt.FailOnOpt = FailOn.ERROR,
    no_pull: opt.NoPull = False,
    static: opt.Static = False,
    quiet: opt.Quiet = False,
) -> None:
    """Fix (or check) a Dockerfile so the image resolves its libraries."""
    if len(dockerfiles) > 1 and (fmt is not None or output or overlay or env_line or image or build):
        fail(UsageError("several Dockerfiles work only with --check, --write or the default diff",
                         "run ldfix patch once per file for --format, --output, --overlay, --env-line, --image, "
                         "--build"))
    worst = 0
    for dockerfile in dockerfiles:
        try:
            _patch_one(dockerfile, write=write, check=check, overlay=overlay, env_line=env_line, image=image,
                       build=build, target=target, build_arg=build_arg, base_env=base_env, lib=lib,
                       platform=platform, fmt=fmt, output=output, fail_on=fail_on, no_pull=no_pull, static=static,
                       quiet=quiet)
        except typer.Exit as done:
            worst = max(worst, done.exit_code)
    raise typer.Exit(worst)


def _patch_one(dockerfile: str, *, write: bool, check: bool, overlay: str | None, env_line: bool,
               image: str | None, build: bool, target: str | None, build_arg: list[str], base_env: list[str],
               lib: list[str], platform: str | None, fmt: Format | None, output: str | None, fail_on: FailOn,
               no_pull: bool, static: bool, quiet: bool) -> None:
    from ldfix import api
    from ldfix.dockerfile.job import check_exit, run
    from ldfix.dockerfile.result import Options
    from ldfix.image.refs import parse_ref

    views: list[ImageView] = []

    def opener(ref: str, no_pull_now: bool) -> tuple[ImageView, Oracle | None]:
        source = api.Source(parse_ref(ref), {}, opt.platform_of(platform), no_pull_now, static,
                            None if quiet else lazy_progress())
        view = api.open_view(source)
        views.append(view)
        return view, api.oracle_for(view, source.ref, static)

    try:
        opt.platform_of(platform)  # a bad --platform is a usage error even when no image is opened
        modes = [m for m, on in (("--write", write), ("--check", check), ("--overlay", overlay is not None),
                                 ("--env-line", env_line)) if on]
        if len(modes) > 1:
            raise UsageError(f"{' and '.join(modes)} cannot be combined", "choose one output mode")
        if image and build:
            raise UsageError("--image and --build cannot be combined", "--build scans what it builds")
        if overlay is not None and not (image or build):
            raise UsageError("--overlay needs the built image to start FROM", "add --image REF or --build")
        opts = Options(target, opt.parse_env(build_arg, "--build-arg"),
                       opt.parse_env(base_env, "--base-env") if base_env else None, image, build, no_pull, fail_on,
                       list(lib))
        result = run(dockerfile, opts, opener, api, display=dockerfile)
    except LdfixError as err:
        for view in views:
            view.close()
        fail(err)
    for view in views:
        view.close()
    mode = "write" if write else "check" if check else "overlay" if overlay else "env-line" if env_line else "diff"
    try:
        _write_files(result, dockerfile, write, overlay, image)
    except LdfixError as err:
        fail(err)
    text = _text(result, fmt, mode, dockerfile, overlay, fail_on)
    emit(text, output)
    raise typer.Exit(check_exit(result, mode, fail_on))



def _write_files(result: PatchResult, dockerfile: str, write: bool, overlay: str | None, image: str | None) -> None:
    """--write replaces the Dockerfile, --overlay writes the overlay file; each atomically or not at all."""
    from ldfix.fix.files import atomic_write

    if write and result.changed:
        if not os.stat(dockerfile).st_mode & 0o222 or not os.access(dockerfile, os.W_OK):
            raise LdfixError(f"{dockerfile} is read-only; it was not changed",
                             "make it writable (chmod u+w), or print the diff without --write")
        try:
            atomic_write(dockerfile, result.new)
        except OSError as err:
            raise LdfixError(f"cannot write {dockerfile}: {err.strerror or err}; the file is unchanged",
                             "check the file's and its directory's permissions") from None
    if overlay is not None and result.changed:
        base = result.scan.image.id if result.scan and result.scan.image.id else (image or "")
        try:
            atomic_write(overlay, result.overlay(base).encode())
        except OSError as err:
            raise LdfixError(f"cannot write {overlay}: {err.strerror or err}", "check the path") from None


def _unchanged(result: PatchResult, dockerfile: str, fail_on: FailOn) -> str:
    return f"{dockerfile}: {result.unchanged_words(fail_on)}"


def _text(result: PatchResult, fmt: Format | None, mode: str, dockerfile: str, overlay: str | None,
          fail_on: FailOn) -> str:
    from ldfix.report.patch import RENDERERS, finding_lines, scan_summary

    if fmt is not None:
        return RENDERERS[fmt](result)
    summary = scan_summary(result)
    lines = finding_lines(result, show_info=fail_on is FailOn.INFO)
    for line in lines + ([summary] if summary else []) + [f"note: {n}" for n in result.notes]:
        sys.stderr.write(line + "\n")
    if mode == "diff":
        return result.diff or ""
    if mode == "env-line":
        return (result.plan.env_line + "\n") if result.plan and result.plan.env_line and result.changed else ""
    if mode == "check":
        sys.stderr.write((f"{dockerfile}: needs a change (ldfix patch --write {dockerfile})" if result.changed
                          else _unchanged(result, dockerfile, fail_on)) + "\n")
    elif mode == "write":
        left = result.unfixed(fail_on)
        remain = (f"; {len(left)} finding(s) at or above --fail-on remain ("
                  f"{', '.join(sorted({f.code for f in left}))}), which no edit of this file removes") if left else ""
        sys.stderr.write((f"{dockerfile}: patched{remain}" if result.changed else _unchanged(result, dockerfile,
                                                                                          fail_on)) + "\n")
    elif mode == "overlay":
        sys.stderr.write(f"wrote {overlay}\n" if result.changed else _unchanged(result, dockerfile, fail_on)
                         + f"; {overlay} not written\n")
    return ""
