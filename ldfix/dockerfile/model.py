"""What a parsed Dockerfile means for the image it builds: stages, meta ARGs substituted into FROM, the
environment of each stage (the base image's Config.Env, then ARG and ENV in order, ENV inherited through
`FROM <stage>`), and the errors BuildKit's instruction parser would reject (instructions/parse.go)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ldfix.dockerfile.parser import KNOWN, Dockerfile, Instruction, ParseError, parse
from ldfix.dockerfile.shell import ShellError, expand
from ldfix.dockerfile.words import parse_words

WS = re.compile(r"[ \t\r\n\v\f]+")
NOT_ONBUILD = ("onbuild", "from", "maintainer")
ROOT_USERS = ("", "root", "0", "root:root", "0:0")  # USER values that run as root


@dataclass
class Assignment:
    """One KEY=value (or legacy `KEY value`) of an ENV instruction."""

    key: str
    raw: str  # the value as written (quotes and escapes kept)
    legacy: bool
    instr: Instruction


@dataclass
class Stage:
    index: int
    name: str | None
    base: str  # the FROM image after meta-ARG substitution
    parent: int | None  # the stage this one is built FROM, if any
    from_instr: Instruction
    body: list[Instruction] = field(default_factory=list)


@dataclass
class EnvStep:
    """The effect of one ENV assignment on LD_LIBRARY_PATH (or any key)."""

    assignment: Assignment
    stage: int
    before: str | None  # None = unset
    after: str
    scope: dict[str, str] = field(default_factory=dict)  # what the expansion saw (ARGs and ENV before it)


@dataclass
class StageEnv:
    env: dict[str, str]
    base_known: bool
    working_dir: str
    user: str
    steps: list[EnvStep]  # every ENV assignment along the chain, in order
    chain: list[Stage]


@dataclass
class Analysis:
    df: Dockerfile
    meta_args: dict[str, str]
    stages: list[Stage]
    errors: list[ParseError]

    def target(self, name: str | None) -> Stage | None:
        if name is None:
            return self.stages[-1] if self.stages else None
        wanted = name.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        return None

    def chain(self, stage: Stage) -> list[Stage]:
        out = [stage]
        seen = {stage.index}
        while out[0].parent is not None and out[0].parent not in seen:
            seen.add(out[0].parent)
            out.insert(0, self.stages[out[0].parent])
        return out

    def root_base(self, stage: Stage) -> str:
        return self.chain(stage)[0].base


def env_assignments(instr: Instruction, escape: str) -> tuple[list[Assignment], str | None]:
    """parseNameVal: the assignments of an ENV (or the error BuildKit gives)."""
    what = instr.keyword.upper()
    words = parse_words(instr.args, escape)
    if not words:
        return [], f"{what} requires at least one argument"
    if "=" not in words[0]:
        parts = WS.split(instr.args.strip(" \t"), maxsplit=1)
        if len(parts) < 2:
            return [], f"{what} must have two arguments"
        return [Assignment(parts[0], parts[1], True, instr)], None
    out = []
    for word in words:
        if "=" not in word:
            return [], f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
        key, value = word.split("=", 1)
        out.append(Assignment(key, value, False, instr))
    return out, None


def _arg_pairs(instr: Instruction, escape: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for word in parse_words(instr.args, escape):
        if "=" in word:
            key, value = word.split("=", 1)
            out.append((key, value))
        else:
            out.append((word, None))
    return out


# Slightly over 60 lines: one walk over the stages in order, as BuildKit resolves FROM and ARG scopes.
def analyze(df: Dockerfile, build_args: Mapping[str, str]) -> Analysis:
    errors: list[ParseError] = []
    meta: dict[str, str] = {}
    stages: list[Stage] = []
    names: dict[str, int] = {}
    for instr in df.instructions:
        name = instr.name
        if name not in KNOWN:
            errors.append(ParseError(instr.start, f"unknown instruction: {instr.keyword.upper()}"))
            continue
        if name == "onbuild":
            if instr.sub is None:
                errors.append(ParseError(instr.start, "ONBUILD requires at least one argument"))
            elif instr.sub.name == "onbuild":
                errors.append(ParseError(instr.start, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"))
            elif instr.sub.name in NOT_ONBUILD:
                errors.append(ParseError(instr.start, f"{instr.sub.keyword.upper()} isn't allowed as an ONBUILD "
                                                      "trigger"))
            elif instr.sub.name not in KNOWN:
                errors.append(ParseError(instr.start, f"unknown instruction: {instr.sub.keyword.upper()}"))
        if name in ("env", "label"):  # parseNameVal runs in the parser, before any stage logic
            assignments, problem = env_assignments(instr, df.escape)
            for a in assignments:
                try:
                    expand(a.raw, {}, df.escape)
                except ShellError as err:  # BuildKit fails the build: "failed to process ...: <err>"
                    problem = problem or f"failed to process {json.dumps(a.raw)}: {err}"
            if problem:
                errors.append(ParseError(instr.start, problem))
        if name == "from":
            words = WS.split(instr.args.strip()) if instr.args.strip() else []
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                errors.append(ParseError(instr.start, "FROM requires either one or three arguments"))
                continue
            try:
                base = expand(words[0], meta, df.escape)
            except ShellError as err:
                errors.append(ParseError(instr.start, str(err)))
                continue
            stage_name = words[2].lower() if len(words) == 3 else None
            parent = names.get(base.lower())
            stage = Stage(len(stages), stage_name, base, parent, instr)
            stages.append(stage)
            if stage_name:
                names[stage_name] = stage.index
            continue
        if not stages:
            if name == "arg":
                for key, value in _arg_pairs(instr, df.escape):
                    try:
                        default = expand(value, meta, df.escape) if value is not None else None
                    except ShellError as err:
                        errors.append(ParseError(instr.start, str(err)))
                        continue
                    got = build_args.get(key, default)
                    if got is not None:
                        meta[key] = got
                    else:
                        meta.setdefault(key, "")
                continue
            errors.append(ParseError(instr.start, "no build stage in current context"))
            continue
        stages[-1].body.append(instr)
    return Analysis(df, meta, stages, errors)


def apply_onbuild(env: Mapping[str, str], triggers: Sequence[str]) -> dict[str, str]:
    """The env after a base image's ONBUILD triggers ran (their ENVs; other triggers do not change it)."""
    out = dict(env)
    for trigger in triggers:
        trig = parse(trigger.encode("utf-8", "surrogateescape"))
        for instr in trig.instructions[:1]:
            if instr.name != "env":
                continue
            assignments, problem = env_assignments(instr, trig.escape)
            scope = dict(out)
            for a in [] if problem else assignments:
                with contextlib.suppress(ShellError):
                    out[a.key] = expand(a.raw, scope, trig.escape)
    return out


def evaluate(an: Analysis, stage: Stage, base_env: Mapping[str, str] | None, build_args: Mapping[str, str],
             base_working_dir: str = "/", base_user: str = "") -> StageEnv:
    """The environment the target stage's image ends with (and every ENV step on the way)."""
    env: dict[str, str] = dict(base_env or {})
    if base_env is not None and "PATH" not in env:
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    working_dir, user = base_working_dir or "/", base_user
    steps: list[EnvStep] = []
    chain = an.chain(stage)
    for st in chain:
        args: dict[str, str] = {}
        for instr in st.body:
            scope = {**args, **env}
            if instr.name == "arg":
                for key, value in _arg_pairs(instr, an.df.escape):
                    try:
                        default = expand(value, scope, an.df.escape) if value is not None else an.meta_args.get(key)
                    except ShellError:
                        default = None
                    got = build_args.get(key, default)
                    if got is not None:
                        args[key] = got
            elif instr.name == "env":
                assignments, problem = env_assignments(instr, an.df.escape)
                if problem:
                    continue
                new = dict(env)
                for a in assignments:
                    try:
                        value = expand(a.raw, scope, an.df.escape)
                    except ShellError:
                        value = a.raw
                    steps.append(EnvStep(a, st.index, env.get(a.key), value, scope))
                    new[a.key] = value
                env = new
            elif instr.name == "workdir":
                try:
                    path = expand(instr.args.strip(), scope, an.df.escape)
                except ShellError:
                    continue
                working_dir = path if path.startswith("/") else working_dir.rstrip("/") + "/" + path
            elif instr.name == "user":
                user = instr.args.strip()
    return StageEnv(env, base_env is not None, working_dir, user, steps, chain)
