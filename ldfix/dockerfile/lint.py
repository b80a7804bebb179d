"""Findings about a Dockerfile itself, each on its line: errors Docker would reject (DOCKERFILE_SYNTAX) and
LD_LIBRARY_PATH assignments that cannot do what their author meant (LDPATH_BAD, COMPAT, STUB)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules import BY_CODE
from ldfix.diagnose.rules.dockerfile_syntax import RULE as SYNTAX
from ldfix.diagnose.rules.ldpath_bad import GUARD as GUARD_FIX
from ldfix.diagnose.rules.ldpath_bad import entry_problem
from ldfix.diagnose.rules.stale_cache import RULE as STALE
from ldfix.dockerfile.model import ROOT_USERS, Analysis, EnvStep, Stage, StageEnv, env_assignments
from ldfix.dockerfile.parser import Dockerfile, Instruction, ParseError
from ldfix.dockerfile.shell import ShellError, expand
from ldfix.loader.env import in_dir_named, split_ld_library_path

KEY = "LD_LIBRARY_PATH"
SELF_REF = re.compile(r"\$(\{)?LD_LIBRARY_PATH\b")
GUARDED = re.compile(r"\$\{LD_LIBRARY_PATH:?\+")
UNKNOWN = "/ldfix-base-value-unknown"
EXPORT = re.compile(rf"(?:^|[;&|(\s])export\s+{KEY}=")


@dataclass
class StepFindings:
    step: EnvStep
    findings: list[Finding]
    repairable: bool  # a finding the patch repairs in place (stray text, empty entry, legacy form, compat/stubs)


def syntax_findings(an: Analysis, path: str) -> list[Finding]:
    errors: list[ParseError] = sorted([*an.df.errors, *an.errors], key=lambda e: e.line)
    out = []
    esc = an.df.escape
    trailing = re.compile(rf"(?<!{re.escape(esc)}){re.escape(esc)}[ \t]+(\S.*)$")
    by_start = {i.start: i for i in an.df.instructions}
    previous_end: dict[int, int] = {}
    for before, after in zip(an.df.instructions, an.df.instructions[1:], strict=False):
        previous_end[after.start] = before.end
    for err in errors:
        if err.message.startswith("unknown instruction") and err.line in by_start and err.line in previous_end:
            end = previous_end[err.line]
            text = an.df.text(end, end).rstrip("\r\n")
            m = trailing.search(text)
            if m is not None:
                out.append(SYNTAX.finding(
                    f"text after the line-continuation character (column {m.start() + 1}): the instruction ends "
                    f"on this line, so line {err.line} starts a new instruction",
                    file=path, line=end, evidence=(text.strip(),),
                    fix=f"move {m.group(1).strip()!r} to its own line above the instruction, or delete it, so "
                        f"'{esc}' is the last character"))
        out.append(SYNTAX.finding(f"dockerfile parse error on line {err.line}: {err.message}",
                                  file=path, line=err.line, evidence=(an.df.text(err.line, err.line).strip(),),
                                  fix="Docker rejects this file; ldfix does not edit it until it parses"))
    return sorted(out, key=lambda f: f.line or 0)


def _entries(value: str) -> list[str]:
    return split_ld_library_path(value) or []


KEY_AT = re.compile(rf"(?<![$\w{{]){KEY}(?==|[ \t])")  # the key, not a $LD_LIBRARY_PATH reference
PRAGMA = re.compile(r"#\s*ldfix\s+ignore\s*=\s*([A-Z_,\s]+)", re.I)
KEEP = re.compile(r"#.*\bkeep\b.*\b(compat|stubs?)\b", re.I)


def key_position(df: Dockerfile | None, instr: Instruction) -> tuple[int, int | None]:
    """(physical line, 1-based column) of the LD_LIBRARY_PATH key in an instruction that spans lines."""
    if df is None:
        return instr.start, None
    for number in range(instr.start, instr.end + 1):
        m = KEY_AT.search(df.text(number, number))
        if m is not None:
            return number, m.start() + 1
    return instr.start, None


def suppressed(df: Dockerfile | None, line: int, code: str) -> bool:
    """A `# ldfix ignore=CODE` pragma, or a comment saying the compat / stubs entry is kept on purpose, in the
    comment block right above the instruction (Dockerfile comments are whole lines)."""
    if df is None:
        return False
    number = line - 1
    while number >= 1:
        text = df.text(number, number).strip()
        if not text.startswith("#"):
            break
        m = PRAGMA.search(text)
        if m and code in {c.strip().upper() for c in m.group(1).split(",")}:
            return True
        keep = KEEP.search(text)
        if keep and code == ("COMPAT" if keep.group(1).lower() == "compat" else "STUB"):
            return True
        number -= 1
    return False


def lint_steps(stage_env: StageEnv, path: str, working_dir: str, escape: str = "\\",
               df: Dockerfile | None = None) -> list[StepFindings]:
    out = []
    for step in stage_env.steps:
        if step.assignment.key != KEY:
            continue
        linted = _lint(step, stage_env.base_known, path, working_dir, escape, key_position(df, step.assignment.instr))
        start = step.assignment.instr.start
        kept = [f for f in linted.findings if not suppressed(df, start, f.code)]
        if len(kept) < len(linted.findings) and not kept:
            linted.repairable = False  # what the line does is meant: nothing to repair
        linted.findings = kept
        out.append(linted)
    return out


def _lint(step: EnvStep, base_known: bool, path: str, working_dir: str, escape: str,
          where: tuple[int, int | None]) -> StepFindings:
    a = step.assignment
    line, column = where
    found: list[Finding] = []
    repairable = False

    def add(code: str, severity: Severity | None, message: str, fix: str, repair: bool = True) -> None:
        nonlocal repairable
        found.append(replace(BY_CODE[code].finding(message, severity, file=path, line=line,
                                                   evidence=(f"{KEY}={step.after}",), fix=fix), column=column))
        repairable = repairable or repair

    if a.legacy:
        add("LDPATH_BAD", None, f"legacy 'ENV {KEY} value' form: everything after the first space is the "
            "value, '#' and spaces included", f'write ENV {KEY}="..." (key=value form, double quotes)')
    refs_self = SELF_REF.search(a.raw) is not None
    unguarded = refs_self and GUARDED.search(a.raw) is None
    if unguarded and not base_known:
        add("LDPATH_BAD", None, f"${KEY} is used without a guard: if the base image does not set it, the "
            "value gets an empty entry (= the working directory)", f"use the {GUARD_FIX} guard", repair=False)
    value = step.after
    if not base_known and step.before is None and refs_self:
        # the base image's value is unknown: judge the entries as if it were set (the guard warning covers unset)
        try:
            value = expand(a.raw, {**step.scope, KEY: UNKNOWN}, escape)
        except ShellError:
            value = step.after
    for entry in _entries(value):
        if entry == UNKNOWN:
            continue
        problem = entry_problem(entry, working_dir)
        if problem is not None:
            message = problem.message
            if entry == "" and unguarded and not step.before:
                message += f" (${KEY} is unset or empty before this line, so it expands to nothing)"
            add("LDPATH_BAD", problem.severity, message, problem.fix, repair=problem.severity is Severity.ERROR)
        elif in_dir_named(entry, "compat"):
            add("COMPAT", None, f"{entry} (CUDA forward-compatibility directory) is on {KEY}: its libcuda.so.1 "
                "overrides the driver's", f"remove {entry}; the NVIDIA runtime mounts the driver")
        elif in_dir_named(entry, "stubs"):
            add("STUB", None, f"{entry} (link-time stubs) is on {KEY}: a stub libcuda.so.1 fails at run time",
                f"remove {entry}; stubs are for linking only")
    if not refs_self and step.before:
        dropped = [e for e in _entries(step.before) if e and e not in _entries(step.after)]
        if dropped:
            add("LDPATH_BAD", None, f"this ENV drops the inherited {KEY} entries {', '.join(dropped)}",
                f"keep them with the {GUARD_FIX} guard, or confirm they are not needed", repair=False)
    return StepFindings(step, found, repairable)


def stage_findings(an: Analysis, target: Stage, path: str, base_user: str = "") -> list[Finding]:
    """Findings about the stage graph and the instructions around the library path, on their lines:
    an LD_LIBRARY_PATH set only in a stage the target does not build FROM (COPY --from copies files, never
    ENV), and a `RUN ldconfig` that runs as a non-root USER (it cannot rewrite /etc/ld.so.cache)."""
    out: list[Finding] = []
    chain = {st.index for st in an.chain(target)}
    for st in an.stages:
        if st.index in chain:
            continue
        for instr in st.body:
            if instr.name == "env" and any(a.key == KEY for a in env_assignments(instr, an.df.escape)[0]):
                label = f"stage '{st.name}'" if st.name else f"stage {st.index}"
                out.append(BY_CODE["LDPATH_BAD"].finding(f"{KEY} is set in {label}, which the target stage does "
                                   "not build FROM: it does not reach the final image (COPY --from copies files, "
                                   "not ENV)", file=path, line=instr.start,
                                   fix="set it in the target stage (ldfix patch does that when a library needs it)"))
    user = base_user
    for st in an.chain(target):
        for instr in st.body:
            if instr.name == "run" and EXPORT.search(instr.args):
                out.append(BY_CODE["LDPATH_BAD"].finding(
                    f"RUN export {KEY}=... sets it for the rest of this RUN only: later steps and the image do "
                    "not see it", Severity.WARNING, file=path, line=instr.start,
                    fix=f"use ENV {KEY}=... for the image, or drop the export if only this RUN needs it"))
            if instr.name == "user":
                user = instr.args.strip()
            elif instr.name == "run" and re.search(r"(^|[\s;&|/\"'])ldconfig(\s|$|[;&|\"'])", instr.args) \
                    and user not in ROOT_USERS:
                out.append(STALE.finding(f"RUN ldconfig runs as USER {user}: it cannot rewrite "
                                   "/etc/ld.so.cache, so the cache stays stale", Severity.WARNING, file=path,
                                   line=instr.start,
                                   fix=f"run it before USER {user}, or wrap it in USER root / USER {user}"))
    return out
