"""Findings about a Dockerfile itself, each on its line: errors Docker would reject (DOCKERFILE_SYNTAX) and
LD_LIBRARY_PATH assignments that cannot do what their author meant (LDPATH_BAD, COMPAT, STUB)."""

from __future__ import annotations

import re
from dataclasses import replace

from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules import BY_CODE
from ldfix.diagnose.rules.dockerfile_syntax import RULE as SYNTAX
from ldfix.diagnose.rules.stale_cache import RULE as STALE
from ldfix.dockerfile.entries import KEY
from ldfix.dockerfile.model import ROOT_USERS, Analysis, Stage, env_assignments
from ldfix.dockerfile.parser import Dockerfile, Instruction, ParseError
from ldfix.dockerfile.pragmas import key_position, suppressed
from ldfix.dockerfile.steplint import StepFindings, lint_steps

__all__ = ["KEY", "StepFindings", "key_position", "lint_steps", "stage_findings", "suppressed", "syntax_findings"]
EXPORT = re.compile(rf"(?:^|[;&|(\s])export\s+{KEY}=")
LDCONFIG = re.compile(r"(^|[\s;&|/\"'])ldconfig(\s|$|[;&|\"'])")
CONF_WRITE = re.compile(r"""(["']?)(/\S*?/(stubs|compat)(/lib)?)/?\1\s*>>?\s*/etc/ld\.so\.conf\.d/([\w.+-]+)""")
LDCONFIG_DIR = re.compile(r"\bldconfig\s+(?:-\S+\s+)*(/(?:[^;&|\s$]|\$\([^)]*\)|\$\{?\w+\}?)*?/(stubs|compat))/?"
                          r"(?=[\s;&|\"']|$)")
PLAIN_LDCONFIG = re.compile(r"\bldconfig\s*($|[;&|])")


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


def _at(df: Dockerfile, instr: Instruction, pattern: re.Pattern[str]) -> tuple[int, int | None]:
    """(physical line, 1-based column) of the first match of `pattern` among an instruction's lines."""
    for number in range(instr.start, instr.end + 1):
        m = pattern.search(df.text(number, number))
        if m is not None:
            return number, m.start() + 1
    return instr.start, None


def _placed(f: Finding, where: tuple[int, int | None]) -> Finding:
    return replace(f, line=where[0], column=where[1])


# Over 60 lines by a little: the three instruction patterns that act on the library path outside ENV, each
# with its wording; split further they would each repeat the walk over the chain's stages.
def stage_findings(an: Analysis, target: Stage, path: str, base_user: str = "") -> list[Finding]:
    """Findings about the stage graph and the instructions around the library path, on their lines:
    an LD_LIBRARY_PATH set only in a stage the target does not build FROM (COPY --from copies files, never
    ENV; an info, and none when the target sets its own), `RUN export LD_LIBRARY_PATH`, a `RUN ldconfig`
    that runs as a non-root USER (it cannot rewrite /etc/ld.so.cache), and a RUN that registers a stubs or
    compat directory with the loader for good."""
    out: list[Finding] = []
    df = an.df
    chain = {st.index for st in an.chain(target)}
    target_sets = any(instr.name == "env" and any(a.key == KEY for a in env_assignments(instr, df.escape)[0])
                      for st in an.chain(target) for instr in st.body)
    for st in an.stages:
        if st.index in chain or target_sets:
            continue
        for instr in st.body:
            if instr.name == "env" and any(a.key == KEY for a in env_assignments(instr, df.escape)[0]):
                label = f"stage '{st.name}'" if st.name else f"stage {st.index}"
                out.append(_placed(BY_CODE["LDPATH_BAD"].finding(
                    f"{KEY} is set in {label}, which the target stage does not build FROM: it does not reach the "
                    "final image (COPY --from copies files, not ENV)", Severity.INFO, file=path,
                    fix="set it in the target stage (ldfix patch does that when a library needs it)"),
                    key_position(df, instr)))
    user = base_user
    runs = [i for st in an.chain(target) for i in st.body if i.name == "run"]
    for st in an.chain(target):
        for instr in st.body:
            if instr.name == "run" and EXPORT.search(instr.args):
                out.append(_placed(BY_CODE["LDPATH_BAD"].finding(
                    f"RUN export {KEY}=... sets it for the rest of this RUN only: later steps and the image do "
                    "not see it", Severity.WARNING, file=path,
                    fix=f"use ENV {KEY}=... for the image, or drop the export if only this RUN needs it"),
                    _at(df, instr, re.compile(rf"export\s+{KEY}="))))
            if instr.name == "user":
                user = instr.args.strip()
            elif instr.name == "run" and LDCONFIG.search(instr.args) and user not in ROOT_USERS:
                out.append(_placed(STALE.finding(
                    f"RUN ldconfig runs as USER {user}: it cannot rewrite /etc/ld.so.cache, so the cache stays "
                    "stale", Severity.WARNING, file=path,
                    fix=f"run it before USER {user}, or wrap it in USER root / USER {user}"),
                    _at(df, instr, re.compile(r"\bldconfig\b"))))
            if instr.name == "run":
                out += _registered(df, instr, runs[runs.index(instr) + 1:], path)
    return [f for f in out if not suppressed(df, f.line or 0, f.code)
            and not suppressed(df, _start_of(df, f.line or 0), f.code)]


def _start_of(df: Dockerfile, line: int) -> int:
    return next((i.start for i in df.instructions if i.start <= line <= i.end), line)


def _registered(df: Dockerfile, instr: Instruction, later: list[Instruction], path: str) -> list[Finding]:
    """A RUN that writes a stubs / compat directory into /etc/ld.so.conf.d (and nothing later removes the file),
    or runs `ldconfig DIR` on one (and no later plain `ldconfig` rebuilds the cache without it): the cache the
    image ships with then resolves libcuda.so.1 to a stub, or to the compat copy."""
    out = []
    for m in CONF_WRITE.finditer(instr.args):
        directory, kind, conf = m.group(2), m.group(3), m.group(5)
        rest = instr.args[m.end():] + " ".join(i.args for i in later)
        if re.search(rf"\brm\b[^;&|]*{re.escape(conf)}", rest):
            continue
        out.append(_placed(_registration(kind, directory, f"this RUN writes {directory} into "
                                         f"/etc/ld.so.conf.d/{conf}", path),
                           _at(df, instr, re.compile(r"ld\.so\.conf\.d"))))
    for m in LDCONFIG_DIR.finditer(instr.args):
        directory, kind = m.group(1), m.group(2)
        rest = instr.args[m.end():] + " ; " + " ; ".join(i.args for i in later)
        if PLAIN_LDCONFIG.search(rest):
            continue
        out.append(_placed(_registration(kind, directory, f"this RUN runs ldconfig on {directory}", path),
                           _at(df, instr, re.compile(r"\bldconfig\s"))))
    return out


def _registration(kind: str, directory: str, what: str, path: str) -> Finding:
    if kind == "stubs":
        return BY_CODE["STUB"].finding(
            f"{what}: the image's ld.so.cache then resolves libcuda.so.1 to the link-time stub, which fails at run "
            "time", file=path, paths=(directory,),
            fix="link against the stubs with LIBRARY_PATH, or remove the conf file and run ldconfig again in the "
                "same RUN once the build is done")
    return BY_CODE["COMPAT"].finding(
        f"{what}: the image's ld.so.cache then resolves libcuda.so.1 to the forward-compatibility copy, which "
        "overrides the driver's", file=path, paths=(directory,),
        fix="leave compat out of the cache unless the nodes' driver is older than the toolkit (say so with "
            "`# ldfix ignore=COMPAT` above the RUN)")
