"""Findings about each LD_LIBRARY_PATH assignment of the stages the target builds from, on the line that can
act on them, with the entry edits that remove them.

- An entry the line writes is judged on that line (LDPATH_BAD, COMPAT, STUB). It is repaired only by
  dropping or trimming that entry as written (a stray '#' cut off, an empty or junk entry dropped, a compat or
  stubs directory dropped), never by writing out what a variable holds: an entry whose variable expands to a
  mix of good and bad directories, or to nothing, is reported with what to do instead.
- An entry inherited from the base image is reported once, on the first assignment that keeps it through
  `$LD_LIBRARY_PATH`, worded as inherited; no edit (dropping it would bake the base's value into the file).
- An assignment that replaces the whole value is judged as a whole: it is not told it drops inherited
  entries that are themselves wrong, and an earlier assignment it overrides before any RUN uses it gets infos.
- `# ldfix ignore=CODE` pragmas and comments saying a compat / stubs entry is kept on purpose, in the comment
  block right above the instruction, silence that finding on that line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules import BY_CODE
from ldfix.diagnose.rules.ldpath_bad import GUARD as GUARD_FIX
from ldfix.diagnose.rules.ldpath_bad import entry_problem
from ldfix.dockerfile.entries import KEY, SELF, Change, RawEntry, apply_spans, edits, entries
from ldfix.dockerfile.model import EnvStep, StageEnv
from ldfix.dockerfile.parser import Dockerfile
from ldfix.dockerfile.pragmas import ON_PURPOSE, comments_above, key_position, suppressed
from ldfix.dockerfile.shell import ShellError, expand
from ldfix.dockerfile.words import parse_words
from ldfix.loader.env import in_dir_named, split_ld_library_path

SELF_REF = re.compile(r"\$(\{)?LD_LIBRARY_PATH\b")
GUARDED = re.compile(r"\$\{LD_LIBRARY_PATH:?\+")


@dataclass
class StepFindings:
    step: EnvStep
    findings: list[Finding]
    changes: list[Change] = field(default_factory=list)  # entry edits that remove some of the findings
    guard: bool = False  # the plain self-reference gets the ${LD_LIBRARY_PATH:+...} guard
    requote: bool = False  # a single-quoted value becomes double-quoted (its $LD_LIBRARY_PATH was literal)
    to_key_value: bool = False  # the legacy `ENV K value` form becomes `ENV K=value`
    targets: list[Finding] = field(default_factory=list)  # the findings the edit removes
    found: list[RawEntry] | None = None

    @property
    def repairable(self) -> bool:
        return bool(self.changes or self.guard or self.requote or self.to_key_value)

    def spans(self, prepend: list[str]) -> list[tuple[int, int, str]] | None:
        """The edit of the raw value (offsets in it); None when the value cannot be edited entry by entry."""
        if self.found is None:
            return None
        raw = self.step.assignment.raw
        out = edits(raw, self.found, self.changes, prepend, self.guard)
        if self.requote:
            out = [s for s in out if s[0] > 0 and s[1] < len(raw)] + [(0, 1, '"'), (len(raw) - 1, len(raw), '"')]
        return sorted(out)

    def new_raw(self, prepend: list[str]) -> str | None:
        spans = self.spans(prepend)
        return None if spans is None else apply_spans(self.step.assignment.raw, spans)


def _judge(entry: str, working_dir: str) -> tuple[str, Severity | None, str, str] | None:
    """(code, severity, message, fix) for one entry the line writes; None when it is fine."""
    problem = entry_problem(entry, working_dir)
    if problem is not None:
        return "LDPATH_BAD", problem.severity, problem.message, problem.fix
    if in_dir_named(entry, "compat"):
        return ("COMPAT", None, f"{entry} (CUDA forward-compatibility directory) is on {KEY}: its libcuda.so.1 "
                "overrides the driver's", f"remove {entry}; the NVIDIA runtime mounts the driver")
    if in_dir_named(entry, "stubs"):
        return ("STUB", None, f"{entry} (link-time stubs) is on {KEY}: a stub libcuda.so.1 fails at run time",
                f"remove {entry}; stubs are for linking only")
    return None


def _droppable(code: str, severity: Severity | None, entry: str) -> bool:
    """Whether dropping the entry is the fix (not a matter of taste): junk, empty, compat, stubs, headers."""
    if code != "LDPATH_BAD":
        return True
    return severity is Severity.ERROR or bool(re.search(r"/include(/|$)|/(bin|share/doc)/?$", entry))


@dataclass
class Chain:
    """What flows along the stages' assignments: the base image's entries still kept, and those reported."""

    inherited: list[str]
    reported: set[str] = field(default_factory=set)


def lint_steps(stage_env: StageEnv, path: str, working_dir: str, escape: str = "\\",
               df: Dockerfile | None = None) -> list[StepFindings]:
    steps = [s for s in stage_env.steps if s.assignment.key == KEY]
    chain = Chain(split_ld_library_path(steps[0].before) or [] if steps else [])
    out = []
    for step in steps:
        start = step.assignment.instr.start
        linted = _lint(step, stage_env.base_known, path, working_dir, escape, key_position(df, step.assignment.instr),
                       chain, df)
        kept = [f for f in linted.findings if not suppressed(df, start, f.code)]
        if len(kept) < len(linted.findings):
            linted.targets = [f for f in linted.targets if f in kept]
            if not linted.targets:  # what the line does is meant: nothing to repair
                linted.changes, linted.guard, linted.requote, linted.to_key_value = [], False, False, False
        linted.findings = kept
        out.append(linted)
    _overridden(out, stage_env, df)
    return out


def _overridden(out: list[StepFindings], stage_env: StageEnv, df: Dockerfile | None) -> None:
    """An assignment that a later one replaces (no $LD_LIBRARY_PATH) before any RUN runs with it, or that a
    later one replaces with a comment saying it does so on purpose, reaches nothing that matters: its
    findings become infos, and it is not edited. The pair is judged as a whole."""
    order = [i for st in stage_env.chain for i in st.body]
    position = {id(i): n for n, i in enumerate(order)}
    for k, sf in enumerate(out):
        a = sf.step.assignment.instr
        later = next((x for x in out[k + 1:] if x.step.assignment.instr is not a
                      and not SELF_REF.search(x.step.assignment.raw)), None)
        if later is None or not sf.findings:
            continue
        b = later.step.assignment.instr
        between = order[position.get(id(a), 0) + 1:position.get(id(b), 0)]
        meant = any(ON_PURPOSE.search(t) for t in comments_above(df, b.start))
        if not meant and any(i.name in ("run", "onbuild") for i in between):
            continue
        at = key_position(df, b)[0]
        why = "on purpose, as its comment says" if meant else "before any RUN uses it"
        sf.findings = [replace(f, severity=Severity.INFO, message=f"{f.message} (line {at} replaces the value {why})")
                       for f in sf.findings]
        sf.changes, sf.guard, sf.requote, sf.to_key_value, sf.targets = [], False, False, False, []


# Over 60 lines: one pass over the entries of one assignment, each judged where it comes from (written here,
# through a variable, or inherited) with the edit that fixes it decided in the same place.
def _lint(step: EnvStep, base_known: bool, path: str, working_dir: str, escape: str,
          where: tuple[int, int | None], chain: Chain, df: Dockerfile | None) -> StepFindings:
    a = step.assignment
    line, column = where
    sf = StepFindings(step, [])

    def add(code: str, severity: Severity | None, message: str, fix: str, entry: str | None = None,
            target: bool = False) -> Finding:
        f = replace(BY_CODE[code].finding(message, severity, file=path, line=line, paths=(entry,) if entry else (),
                                          evidence=(f"{KEY}={step.after}",), fix=fix), column=column)
        sf.findings.append(f)
        if target:
            sf.targets.append(f)
        return f

    raw = a.raw
    refs_self = SELF_REF.search(raw) is not None
    single = len(raw) >= 2 and raw[0] == raw[-1] == "'" and raw.count("'") == 2 and refs_self
    stands = SELF if step.before or not base_known else step.before  # known and unset or empty: itself
    sf.found = found = entries(raw, step.scope, escape, stands) if raw else []
    legacy = None
    if a.legacy:  # worth a warning (and an edit) only when the value has text the form turns into the path
        junk = re.search(r"[#\s]", raw) is not None
        sf.to_key_value = junk
        legacy = add("LDPATH_BAD", None if junk else Severity.INFO, f"legacy 'ENV {KEY} value' form: everything "
                     "after the first space is the value, '#' and spaces included", f"write ENV {KEY}=... (key=value "
                     "form; BuildKit's LegacyKeyValueFormat check says the same)", target=junk)
    unguarded = refs_self and GUARDED.search(raw) is None and not single
    guard_warning = None
    if unguarded and not base_known:
        guard_warning = add("LDPATH_BAD", None, f"${KEY} is used without a guard: if the base image does not set "
                            "it, the value gets an empty entry (= the working directory)", f"use the {GUARD_FIX} guard")
    if found is None:  # the value does not expand (Docker rejects it): judge what it reads as, edit nothing
        for sub in split_ld_library_path(step.after) or []:
            if (judged := _judge(sub, working_dir)) is not None:
                add(judged[0], judged[1], judged[2], judged[3], sub)
    Judged = tuple[str, Severity | None, str, str]
    for i, e in enumerate(found if found is not None and step.after else []):
        problems: list[tuple[str, Judged]] = []
        for sub in e.expanded:
            if sub == SELF and step.before:
                _inherited(step, chain, add, working_dir)
            elif SELF in sub and step.before:  # text glued to the inherited value: judge what it makes
                have = split_ld_library_path(step.before) or []
                for piece in split_ld_library_path(sub.replace(SELF, step.before)) or []:
                    if piece not in have and (judged := _judge(piece, working_dir)) is not None:
                        problems.append((piece, judged))
            elif SELF not in sub and (judged := _judge(sub, working_dir)) is not None:
                problems.append((sub, judged))
        if not problems:
            continue
        if single and all("$" in sub for sub, _ in problems):
            for sub, (code, sev, msg, fix) in problems:
                add(code, sev, msg, fix, sub, target=True)
            sf.requote = True
            continue
        if e.plain_self:  # the guard is its fix (see _guard)
            for sub, (code, sev, msg, fix) in problems:
                add(code, sev, msg + f" (${KEY} is unset or empty before this line, so it expands to nothing)",
                    fix, sub)
            continue
        cut = e.cut_text()
        fixed = _cut_fixes(cut, step, escape, working_dir) if cut is not None else False
        every = len(problems) == len(e.expanded)
        drop = every and all(_droppable(c, s, sub) for sub, (c, s, _, _) in problems) and \
            not (e.has_ref and any(sub == "" for sub, _ in problems))
        for sub, (code, sev, msg, fix) in problems:
            if not (fixed or drop) and e.has_ref:
                fix += (f"; ldfix leaves this line alone: the entry is written as {e.text!r}, which also holds "
                        "other directories or nothing; change what sets the variable, or write the entries out")
            add(code, sev, msg, fix, sub, target=fixed or drop)
        if fixed:
            sf.changes.append(Change(i, cut or None))
        elif drop:
            sf.changes.append(Change(i))
    _guard(sf, step, base_known, refs_self and GUARDED.search(raw) is None, found or [], guard_warning)
    if not refs_self and step.before:
        _dropped(step, working_dir, add, df)
    if not refs_self:
        chain.inherited = []
    if legacy is not None and not sf.to_key_value and sf.repairable:  # edited anyway: in key=value form
        sf.to_key_value = True
        sf.targets.append(legacy)
    if sf.to_key_value and not _kv_ok(sf):
        sf.to_key_value = False
        sf.targets = [f for f in sf.targets if "legacy" not in f.message]
    return sf


def _inherited(step: EnvStep, chain: Chain, add: object, working_dir: str) -> None:
    """Problems of the base image's entries, once, on the first assignment that keeps them."""
    for entry in split_ld_library_path(step.before) or []:
        if entry not in chain.inherited or entry in chain.reported:
            continue
        chain.reported.add(entry)
        judged = _judge(entry, working_dir)
        if judged is None:
            continue
        code, sev, msg, _ = judged
        add(code, sev, f"{msg}; inherited from the base image's {KEY} and kept here by ${KEY}",  # type: ignore
            f"this line keeps the base image's value; to drop {entry}, list the entries you need instead of "
            f"${KEY} (ldfix does not write the base's value into the file)", entry)


def _cut_fixes(text: str, step: EnvStep, escape: str, working_dir: str) -> bool:
    """Whether the entry cut at its stray '#' is only good directories (or nothing)."""
    if not text:
        return True
    try:
        value = expand(text, {**step.scope, KEY: SELF}, escape)
    except ShellError:
        return False
    return all(sub == SELF or _judge(sub, working_dir) is None for sub in re.split(r"[:;]", value))


def _guard(sf: StepFindings, step: EnvStep, base_known: bool, unguarded: bool, found: list[RawEntry],
           warning: Finding | None) -> None:
    """A plain $LD_LIBRARY_PATH next to other entries is guarded when the base leaves it unset (its empty entry
    is an error), or when the base is unknown and the line is edited anyway (the warning goes with it)."""
    plain = [e for e in found if e.plain_self]
    if not unguarded or not plain or len(found) < 2:
        return
    if base_known and not step.before:
        sf.guard = True
        sf.targets += [f for f in sf.findings if f.code == "LDPATH_BAD" and "empty entry" in f.message]
    elif not base_known and (sf.changes or sf.to_key_value or sf.requote):
        sf.guard = True
        sf.targets += [warning] if warning is not None else []


def _dropped(step: EnvStep, working_dir: str, add: object, df: Dockerfile | None) -> None:
    """An assignment that replaces the value drops the inherited entries: worth a warning only for entries
    that were any good, and not when a comment above says the override is on purpose."""
    after = split_ld_library_path(step.after) or []
    dropped = [e for e in split_ld_library_path(step.before) or []
               if e and e not in after and _judge(e, working_dir) is None]
    if not dropped or any(ON_PURPOSE.search(t) for t in comments_above(df, step.assignment.instr.start)):
        return
    add("LDPATH_BAD", None, f"this ENV drops the inherited {KEY} entries {', '.join(dropped)}",  # type: ignore
        f"keep them with the {GUARD_FIX} guard, or confirm they are not needed")


def _kv_ok(sf: StepFindings) -> bool:
    """Whether the legacy value, once edited, reads the same as a key=value word (no unquoted space)."""
    new = sf.new_raw([])
    if new is None:
        return False
    word = f"{KEY}={new}"
    return parse_words(word, "\\") == [word]
