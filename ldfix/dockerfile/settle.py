"""Edits that do their job: the planned patch is applied, the patched file parsed and linted again, and an
in-place edit whose line keeps a finding the edit was for (or gains an error) is dropped; a repair that
uncovers another (an entry dropped leaves a later $LD_LIBRARY_PATH empty) gets a further round."""

from __future__ import annotations

from dataclasses import dataclass

from ldfix.diagnose.finding import Finding
from ldfix.dockerfile.model import Analysis, Stage, StageEnv, analyze, evaluate
from ldfix.dockerfile.parser import parse
from ldfix.dockerfile.patch import Edit, Plan, apply, plan
from ldfix.dockerfile.result import Options
from ldfix.dockerfile.steplint import StepFindings, lint_steps


@dataclass(frozen=True)
class Relint:
    """How the patched file's stage is evaluated again: the same build args, base env and image facts."""

    opts: Options
    base_env: dict[str, str] | None
    wd: str
    user: str
    path: str

    def again(self, data: bytes) -> Relinted | None:
        """The patched file parsed, its target stage evaluated and its LD_LIBRARY_PATH steps linted; None
        when it does not parse."""
        df = parse(data)
        an = analyze(df, self.opts.build_args)
        stage = an.target(self.opts.target)
        if df.errors or an.errors or stage is None:
            return None
        env = evaluate(an, stage, self.base_env, self.opts.build_args, self.wd, self.user)
        return Relinted(an, stage, env, lint_steps(env, self.path, env.working_dir, df.escape, df))


@dataclass(frozen=True)
class Relinted:
    an: Analysis
    stage: Stage
    env: StageEnv
    lint: list[StepFindings]


def _shifted(edits: list[Edit], line: int) -> int | None:
    """Where an instruction starting on `line` starts after the edits (None: an edit removed it)."""
    out = line
    for e in edits:
        if e.after == line - 1 and e.replace and not e.lines:
            return None
        if e.after < line - 1:
            if e.after + e.replace >= line:
                return None if not e.lines else out
            out += len(e.lines) - e.replace
    return out


def same(f: Finding) -> tuple[str, str, str]:
    return f.code, str(f.severity), f.message


def _effective(an: Analysis, stage: Stage, lint: list[StepFindings], add: list[str], run_lines: list[str],
               relint: Relint, reason: str, notes: list[str]) -> Plan:
    """The plan, less every in-place edit that does not do its job: the patched file is parsed and linted
    again, and an edited line that still has a finding the edit was for (or gained an error) is left as it
    was, with a note saying so."""
    skip: set[int] = set()
    by_start = {sf.step.assignment.instr.start: sf for sf in lint}
    for _ in range(len(by_start) + 1):
        p = plan(an, stage, lint, add, run_lines, relint.user, reason, frozenset(skip))
        if not p.repaired:
            return p
        again = relint.again(apply(an.df, p.edits))
        new = {sf.step.assignment.instr.start: sf for sf in again.lint} if again else {}
        void = []
        for start in p.repaired:
            moved = _shifted(p.edits, start)
            if moved is None:
                continue
            before, after = by_start[start], new.get(moved)
            left = {same(f) for f in after.findings} if after else None
            old = {same(f) for f in before.findings}
            if left is None or any(same(t) in left for t in before.targets) or any(
                    x[1] == "error" and x not in old for x in left):
                void.append(start)
        if not void:
            return p
        for start in void:
            notes.append(f"line {start}: an edit would not remove its finding, so the line is left as it is")
        skip.update(void)
    return plan(an, stage, lint, add, run_lines, relint.user, reason, frozenset(skip | set(by_start)))


def settle(an: Analysis, stage: Stage, lint: list[StepFindings], add: list[str], run_lines: list[str],
           relint: Relint, reason: str, notes: list[str]) -> tuple[Plan, bytes]:
    """The effective plan and the patched bytes, patched again while a repair uncovers another (dropping an
    entry can leave a later line's $LD_LIBRARY_PATH empty, which then needs its guard): at most a few rounds,
    each with the same checks, the missing directories added in the first only."""
    first = _effective(an, stage, lint, add, run_lines, relint, reason, notes)
    data = apply(an.df, first.edits)
    for _ in range(3):
        if not first.repaired:
            break
        got = relint.again(data)
        if got is None or not any(sf.repairable for sf in got.lint):
            break
        more = _effective(got.an, got.stage, got.lint, [], [], relint, reason, notes)
        if not more.changed:
            break
        data = apply(got.an.df, more.edits)
        first.env_line = more.env_line or first.env_line
        first.dropped += more.dropped
    return first, data
