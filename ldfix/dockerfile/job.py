"""`ldfix patch`: read and check a Dockerfile, scan the image it builds on (or the image it built), plan the
edit, re-check the patched file's LD_LIBRARY_PATH against the same image, and say what changes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ldfix.diagnose.context import ImageFacts
from ldfix.diagnose.finding import FIXABLE, FailOn, Finding, FixKind, Report, Severity, Status
from ldfix.diagnose.rules.dockerfile_syntax import RULE as SYNTAX
from ldfix.diagnose.scan import ScanOptions
from ldfix.dockerfile.lint import KEY, StepFindings, lint_steps, stage_findings, syntax_findings
from ldfix.dockerfile.model import StageEnv, analyze, apply_onbuild, evaluate
from ldfix.dockerfile.parser import parse
from ldfix.dockerfile.result import Options, PatchResult
from ldfix.dockerfile.settle import Relint, same, settle
from ldfix.errors import InputFileError, LdfixError, UsageError
from ldfix.fix.verify import Check, env_for
from ldfix.image.base import ImageView
from ldfix.oracle.base import Oracle

ENTRY_CODES = ("LDPATH_BAD", "COMPAT", "STUB")  # findings about one LD_LIBRARY_PATH entry

# (reference, no_pull) -> (view, oracle or None); the composition root supplies it
Opener = Callable[[str, bool], tuple[ImageView, "Oracle | None"]]


class Scanner(Protocol):
    """What the composition root (ldfix/api.py) lends the job: a scan of an open view with a given env and its
    verified fix, and the fix verifier's verdict on a whole new env."""

    def scan_view(self, view: ImageView, oracle: Oracle | None, options: ScanOptions, env: Mapping[str, str] | None,
                  facts: ImageFacts | None, progress: Callable[[int], None] | None = None
                  ) -> tuple[Report, ImageFacts]: ...

    def verify_env(self, facts: ImageFacts, options: ScanOptions, before: Mapping[str, str],
                   after: Mapping[str, str]) -> Check: ...


def read_dockerfile(path: str) -> bytes:
    if os.path.isdir(path):
        raise InputFileError(f"{path} is a directory", "give the Dockerfile itself, e.g. ldfix patch ./Dockerfile")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist", "check the path") from None
    except OSError as err:
        raise InputFileError(f"cannot read {path}: {err.strerror or err}", "check its permissions") from None
    if b"\0" in data:
        raise InputFileError(f"{path} is a binary file, not a Dockerfile", "give the Dockerfile's path")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{path} is not UTF-8 text (byte {err.start})", "Dockerfiles are UTF-8") from None
    return data


def _base_facts(view: ImageView | None, opts: Options) -> tuple[dict[str, str] | None, str, str, tuple[str, ...]]:
    if opts.base_env is not None:
        return dict(opts.base_env), "/", "", ()
    if view is None:
        return None, "/", "", ()
    return dict(view.config.env), view.config.working_dir, view.config.user, view.config.onbuild


# Over 60 lines: the patch job's steps in the order they must run (read, lint, open images, scan, plan,
# apply, re-check); each step is one call, and the early returns are where Docker would stop.
def run(path: str, opts: Options, opener: Opener, scanner: Scanner, display: str | None = None) -> PatchResult:
    display = display or path
    data = read_dockerfile(path)
    df = parse(data)
    an = analyze(df, opts.build_args)
    findings = syntax_findings(an, display)
    stage = an.target(opts.target)
    if opts.target and stage is None and an.stages:
        names = ", ".join(s.name for s in an.stages if s.name) or "none"
        raise UsageError(f'target stage "{opts.target}" could not be found', f"stages with names: {names}")
    if stage is None and not findings:
        findings.append(SYNTAX.finding("the file has no FROM instruction", file=display, line=1,
                                       fix="start the build stage with FROM <image>"))
    base = an.root_base(stage) if stage else None
    result = PatchResult(display, stage.name if stage and stage.name else ("final" if stage else None), base,
                         findings, None, data, data, None, None)
    result.from_line = an.chain(stage)[0].from_instr.start if stage else None
    result.fail_on = opts.fail_on
    if findings or stage is None:
        # Docker would reject the file: report, lint what can be linted, never edit
        if stage is not None:
            base_env = opts.base_env
            if base_env is None and base and base.lower() != "scratch":
                with contextlib.suppress(LdfixError):  # the base's env if it is already here; never pulled
                    base_env = dict(opener(base, True)[0].config.env)
            stage_env = evaluate(an, stage, base_env, opts.build_args)
            result.findings += _lint_findings(lint_steps(stage_env, display, stage_env.working_dir, df.escape, df))
        result.after = list(result.findings)
        return result

    if base is not None and not base.strip() and opts.base_env is None:
        raise UsageError(f"the base image of the target stage is empty after ARG substitution (line "
                         f"{an.chain(stage)[0].from_instr.start})", "pass it, e.g. --build-arg BASE=nvidia/cuda:12.8.1-"
                         "runtime-ubuntu24.04")
    external = base is not None and base.lower() != "scratch"
    if external and base and "@" not in base and ":" not in base.rsplit("/", 1)[-1]:
        result.notes.append(f"FROM {base} has no tag: Docker builds it as {base}:latest, and so does this check")
        base = f"{base}:latest"
    base_view, scanned, oracle = _open_images(path, opts, base if external else None, opener, result)
    base_env, wd, user, onbuild = _base_facts(base_view, opts)
    if not external and base_env is None:
        base_env = {}
    if base_env is not None and onbuild:
        before = base_env.get(KEY)
        base_env = apply_onbuild(base_env, onbuild)
        if base_env.get(KEY) != before:
            result.notes.append(f"the base image's ONBUILD triggers set {KEY}={base_env.get(KEY, '')} before this "
                                "file's first instruction")
    stage_env = evaluate(an, stage, base_env, opts.build_args, wd, user)
    relint = Relint(opts, base_env, wd, user, display)  # how the patched file is evaluated again
    lint = lint_steps(stage_env, display, stage_env.working_dir, df.escape, df)
    result.findings += sorted(_lint_findings(lint) + stage_findings(an, stage, display, user),
                              key=lambda f: (f.line or 0, f.column or 0))

    report = None
    facts = None
    scan_env: dict[str, str] = {}
    built = scanned is not None and scanned is not base_view
    scan_options = ScanOptions(tuple(opts.libs), opts.fail_on)
    if scanned is not None:
        result.scanned_ref = scanned.ref
        env = dict(scanned.config.env) if built else stage_env.env
        if not built:
            scanned.config = replace(scanned.config, env=env, working_dir=stage_env.working_dir)
        scan_env = env
        report, facts = scanner.scan_view(scanned, oracle, scan_options, env, None)
        result.scan = report
        result.findings += _not_already_linted(list(report.findings), stage_env, result.findings)
        fix = report.fix
        add = list(fix.ld_library_path_add) if fix and fix.kind is FixKind.ENV else []
        run_lines = list(fix.run_lines) if fix and fix.kind is FixKind.LDCONFIG else []
        result.plan, patched = settle(an, stage, lint, add, run_lines, relint, _reason(report), result.notes)
    else:
        result.plan, patched = settle(an, stage, lint, [], [], relint, "", result.notes)
        if opts.base_env is not None:
            result.notes.append("--base-env given: no image was scanned; only the Dockerfile's own LD_LIBRARY_PATH "
                                "lines were checked and repaired")
    result.after = list(result.findings)
    if not result.plan.changed:
        return result
    result.new = patched
    recheck = Recheck(relint, scanned, oracle, facts, built, scanner, scan_options, scan_env)
    result.verified = _recheck(result, recheck)
    if result.verified is False:
        result.notes.append("the patched file did not pass the re-check; no change is offered")
        result.new = data
        result.after = list(result.findings)
    return result


def _open_images(path: str, opts: Options, base: str | None, opener: Opener, result: PatchResult
                 ) -> tuple[ImageView | None, ImageView | None, Any]:
    """(the base image, the image to scan, its loader oracle). The scanned image is the base, or the one
    --image names, or the one --build makes; the base is opened for its env unless --base-env stands in."""
    base_view: ImageView | None = None
    scanned: ImageView | None = None
    oracle = None
    if opts.image is not None:
        scanned, oracle = opener(opts.image, opts.no_pull)
    elif opts.build:
        from ldfix.image.docker import build_image

        image_id = build_image(path, opts.target, opts.build_args)
        result.notes.append(f"built {result.path} as {image_id}")
        scanned, oracle = opener(image_id, True)
    if opts.base_env is None and base is not None:
        if scanned is None:
            base_view, oracle = opener(base, opts.no_pull)
            scanned = base_view
        else:
            try:  # only for the env the Dockerfile starts from; never pulled for this
                base_view, _ = opener(base, True)
            except LdfixError:
                result.notes.append(f"the base image {base} is not present locally: its env is unknown, so "
                                    "unguarded $LD_LIBRARY_PATH references are checked against the built image only")
    return base_view, scanned, oracle


def _not_already_linted(findings: list[Finding], stage_env: StageEnv, linted: list[Finding]) -> list[Finding]:
    """The scan's findings, less its LD_LIBRARY_PATH entry findings for entries this Dockerfile wrote itself
    or that the lint reported as inherited: the lint already reports those on their lines."""
    written = [step.assignment.raw for step in stage_env.steps if step.assignment.key == KEY]
    on_lines = {f.paths[0] for f in linted if f.file and f.paths}
    out = []
    for f in findings:
        entry_finding = f.soname is None and f.code in ENTRY_CODES and f.paths
        if entry_finding and (f.paths[0] in on_lines or any(f.paths[0] and f.paths[0] in raw for raw in written)):
            continue
        out.append(f)
    return out


def _reason(report: Report) -> str:
    codes = [f for f in report.findings if f.code in FIXABLE]
    parts = sorted({f"{f.code} {f.soname}" for f in codes if f.soname})
    return ", ".join(parts[:4]) + (", ..." if len(parts) > 4 else "")


def _lint_findings(lint: list[StepFindings]) -> list[Finding]:
    return [f for sf in lint for f in sf.findings]


@dataclass(frozen=True)
class Recheck:
    """What the re-check of a patched file needs: the same base facts and the same scanned image."""

    relint: Relint  # the same build args, base env, working directory and user
    scanned: ImageView | None
    oracle: Oracle | None
    facts: ImageFacts | None
    built: bool
    scanner: Scanner
    scan_options: ScanOptions
    scan_env: dict[str, str]  # the env the first scan ran with


def _recheck(result: PatchResult, rc: Recheck) -> bool | None:
    """Check the patched file as if it were new: it must parse, its LD_LIBRARY_PATH lines must be clean, and
    with its LD_LIBRARY_PATH the scanned image must resolve every library (the model, then the image's own
    loader, through the same scan and fix verification as `ldfix scan`). Fills `result.after` with what would
    still be reported. None when no image could be asked."""
    base_env, scanned, oracle, built = rc.relint.base_env, rc.scanned, rc.oracle, rc.built
    got = rc.relint.again(result.new)
    if got is None:
        result.notes.append("internal error: the patched file does not parse")
        return False
    env2 = got.env
    after = _lint_findings(got.lint) + stage_findings(got.an, got.stage, result.path, rc.relint.user)
    result.after = after
    had = {same(f) for f in result.findings}
    new_errors = [f for f in after if f.severity is Severity.ERROR and same(f) not in had]
    if new_errors:
        result.notes.append("the patched file has new findings: " + "; ".join(f.message for f in new_errors))
        return False
    if scanned is None or result.scan is None:
        return None
    if built and base_env is None:  # the built image's env with the fix's directories in front
        env = env_for(scanned.config.env, result.scan.fix)
    else:
        env = {**(dict(scanned.config.env) if built else {}), **env2.env}
    if result.scan.fix is not None and result.scan.fix.kind is FixKind.LDCONFIG:
        # the new RUN line (re)builds the cache; the scan already checked it in a throwaway overlay build
        verified = result.scan.fix.verified
        handled = ("STALE_CACHE", "PATH_MISSING", "TRANSITIVE") if verified is not False else ()
        result.after = after + [f for f in result.scan.findings if f.code not in handled]
        return verified
    assert rc.facts is not None
    again, _ = rc.scanner.scan_view(scanned, oracle, rc.scan_options, env, rc.facts)
    result.after = after + list(again.findings)
    verdict = rc.scanner.verify_env(rc.facts, rc.scan_options, rc.scan_env, env)
    result.notes += verdict.notes
    if not verdict.model_ok:
        unresolved = [lib.soname for lib in again.libraries if lib.status is Status.UNRESOLVED]
        result.notes.append("after the patch " + ("these still do not resolve: " + ", ".join(unresolved)
                                                  if unresolved else "a library would load another file"))
        return False
    return verdict.loader


def check_exit(result: PatchResult, mode: str, fail_on: FailOn) -> int:
    """1 when the file has syntax errors, needs a change (except after --write made it), or would still have
    findings at or above --fail-on after the change; else 0."""
    if any(f.code == "DOCKERFILE_SYNTAX" for f in result.findings):
        return 1
    if result.unfixed(fail_on):
        return 1
    return 1 if result.changed and mode != "write" else 0
