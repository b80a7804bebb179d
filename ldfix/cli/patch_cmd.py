"""`ldfix patch DOCKERFILE`: the command line of the Dockerfile job (ldfix/dockerfile/job.py)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from ldfix.cli.app import FailOn, Format, _cleanup, _fail, _oracle_for, _parse_env, app, emit, open_image
from ldfix.errors import LdfixError, UsageError
from ldfix.image.base import ImageView


@app.command()
def patch(
    dockerfiles: Annotated[list[str], typer.Argument(help="the Dockerfile to check or fix (several with --check or "
                                                        "--write, as pre-commit passes them)")],
    write: Annotated[bool, typer.Option("--write", help="apply the fix in place (atomic)")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if the file needs a fix")] = False,
    overlay: Annotated[str | None, typer.Option("--overlay", help="write FROM <built image> + fix lines to FILE")
                       ] = None,
    env_line: Annotated[bool, typer.Option("--env-line", help="print only the ENV LD_LIBRARY_PATH line")] = False,
    image: Annotated[str | None, typer.Option("--image", help="scan this built image instead of the base")] = None,
    build: Annotated[bool, typer.Option("--build", help="docker build the file first and scan the result")] = False,
    target: Annotated[str | None, typer.Option("--target", help="the stage to patch (default: the last)")] = None,
    build_arg: Annotated[list[str], typer.Option("--build-arg", help="K=V as for docker build")] = [],  # noqa: B006
    base_env: Annotated[list[str], typer.Option("--base-env", help="K=V of the base image env; no daemon is asked"
                                                )] = [],  # noqa: B006
    lib: Annotated[list[str], typer.Option("--lib", help="also check this soname (repeatable)")] = [],  # noqa: B006
    platform: Annotated[str | None, typer.Option("--platform", help="OS/ARCH to pull or inspect")] = None,
    fmt: Annotated[Format | None, typer.Option("--format", help="table | json | markdown | sarif "
                                                                  "(default: a unified diff)")] = None,
    output: Annotated[str | None, typer.Option("--output", help="write the report to FILE")] = None,
    fail_on: Annotated[FailOn, typer.Option("--fail-on", help="lowest severity that fails the run")] = FailOn.error,
    no_pull: Annotated[bool, typer.Option("--no-pull", help="never contact a registry")] = False,
    static: Annotated[bool, typer.Option("--static", help="never run anything from the image")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    """Fix (or check) a Dockerfile so the image resolves its libraries."""
    if len(dockerfiles) > 1 and (fmt is not None or output or overlay or env_line or image or build):
        _fail(UsageError("several Dockerfiles work only with --check, --write or the default diff",
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
    from ldfix.dockerfile.job import Options, check_exit, run
    from ldfix.report.patch import (
        finding_lines,
        render_json,
        render_markdown,
        render_sarif,
        render_text,
        scan_summary,
    )

    views: list[ImageView] = []

    def opener(ref: str, no_pull_now: bool) -> tuple[ImageView, Any]:
        view = open_image(ref, {}, platform, no_pull_now, quiet)
        views.append(view)
        return view, (None if static else _oracle_for(view))

    try:
        modes = [m for m, on in (("--write", write), ("--check", check), ("--overlay", overlay is not None),
                                 ("--env-line", env_line)) if on]
        if len(modes) > 1:
            raise UsageError(f"{' and '.join(modes)} cannot be combined", "choose one output mode")
        if image and build:
            raise UsageError("--image and --build cannot be combined", "--build scans what it builds")
        if overlay is not None and not (image or build):
            raise UsageError("--overlay needs the built image to start FROM", "add --image REF or --build")
        opts = Options(target, _parse_env(build_arg, "--build-arg"),
                       _parse_env(base_env, "--base-env") if base_env else None, image, build, no_pull, fail_on.value,
                       list(lib))
        result = run(dockerfile, opts, opener, display=dockerfile)
    except LdfixError as err:
        for view in views:
            _cleanup(view)
        _fail(err)
    for view in views:
        _cleanup(view)
    mode = "write" if write else "check" if check else "overlay" if overlay else "env-line" if env_line else "diff"
    try:
        if write and result.changed:
            from ldfix.fix.files import atomic_write

            if not os.stat(dockerfile).st_mode & 0o222 or not os.access(dockerfile, os.W_OK):
                raise LdfixError(f"{dockerfile} is read-only; it was not changed",
                                 "make it writable (chmod u+w), or print the diff without --write")
            try:
                atomic_write(dockerfile, result.new)
            except OSError as err:
                raise LdfixError(f"cannot write {dockerfile}: {err.strerror or err}; the file is unchanged",
                                 "check the file's and its directory's permissions") from None
        if overlay is not None and result.changed:
            from ldfix.fix.files import atomic_write

            base = result.scan.image.id if result.scan and result.scan.image.id else (image or "")
            try:
                atomic_write(overlay, result.overlay(base).encode())
            except OSError as err:
                raise LdfixError(f"cannot write {overlay}: {err.strerror or err}", "check the path") from None
    except LdfixError as err:
        _fail(err)

    text = ""
    if fmt is Format.json:
        text = render_json(result)
    elif fmt is Format.markdown:
        text = render_markdown(result)
    elif fmt is Format.sarif:
        text = render_sarif(result)
    elif fmt is Format.table:
        text = render_text(result)
    else:
        summary = scan_summary(result)
        lines = finding_lines(result, show_info=fail_on is FailOn.info)
        for line in lines + ([summary] if summary else []) + [f"note: {n}" for n in result.notes]:
            sys.stderr.write(line + "\n")
        if mode == "diff":
            text = result.diff or ""
        elif mode == "env-line":
            text = (result.plan.env_line + "\n") if result.plan and result.plan.env_line and result.changed else ""
        elif mode == "check":
            sys.stderr.write(f"{dockerfile}: needs a change (ldfix patch --write {dockerfile})\n" if result.changed
                             else f"{dockerfile}: no change needed\n")
        elif mode == "write":
            sys.stderr.write(f"{dockerfile}: patched\n" if result.changed else f"{dockerfile}: no change needed\n")
        elif mode == "overlay":
            sys.stderr.write(f"wrote {overlay}\n" if result.changed else f"{dockerfile}: no change needed; "
                             f"{overlay} not written\n")
    emit(text, output)
    raise typer.Exit(check_exit(result, mode, fail_on.value))

