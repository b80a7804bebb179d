"""Findings about a Dockerfile itself, each on its line: errors Docker would reject (DOCKERFILE_SYNTAX) and
LD_LIBRARY_PATH assignments that cannot do what their author meant (LDPATH_BAD, COMPAT, STUB)."""

from __future__ import annotations

import re

from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules import BY_CODE
from ldfix.diagnose.rules.dockerfile_syntax import RULE as SYNTAX
from ldfix.diagnose.rules.stale_cache import RULE as STALE
from ldfix.dockerfile.model import ROOT_USERS, Analysis, Stage, env_assignments
from ldfix.dockerfile.parser import ParseError
from ldfix.dockerfile.pragmas import key_position, suppressed
from ldfix.dockerfile.steplint import KEY, StepFindings, lint_steps

__all__ = ["KEY", "StepFindings", "key_position", "lint_steps", "stage_findings", "suppressed", "syntax_findings"]
EXPORT = re.compile(rf"(?:^|[;&|(\s])export\s+{KEY}=")


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


def stage_findings(an: Analysis, target: Stage, path: str, base_user: str = "") -> list[Finding]:
    """Findings about the stage graph and the instructions around the library path, on their lines:
    an LD_LIBRARY_PATH set only in a stage the target does not build FROM (COPY --from copies files, never
    ENV), and a `RUN ldconfig` that runs as a non-root USER (it cannot rewrite /etc/ld.so.cache)."""
    out: list[Finding] = []
    chain = {st.index for st in an.chain(target)}
    target_sets = any(instr.name == "env" and any(a.key == KEY for a in env_assignments(instr, an.df.escape)[0])
                      for st in an.chain(target) for instr in st.body)
    for st in an.stages:
        if st.index in chain or target_sets:
            continue
        for instr in st.body:
            if instr.name == "env" and any(a.key == KEY for a in env_assignments(instr, an.df.escape)[0]):
                label = f"stage '{st.name}'" if st.name else f"stage {st.index}"
                out.append(BY_CODE["LDPATH_BAD"].finding(f"{KEY} is set in {label}, which the target stage does "
                                   "not build FROM: it does not reach the final image (COPY --from copies files, "
                                   "not ENV)", Severity.INFO, file=path, line=key_position(an.df, instr)[0],
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
