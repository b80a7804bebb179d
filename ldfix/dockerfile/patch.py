"""Turning a verified fix into Dockerfile lines, spliced in without touching any other line.

Two kinds of edit: an LD_LIBRARY_PATH ENV that has a finding is edited in place, entry by entry, in its own
layout (continuation lines, indentation, quotes, variable references and conditional expansions stay as
written; only the entries the findings are about go or lose their stray text; a legacy `ENV K value` becomes
`ENV K=value`; a bare self-reference next to other entries gets its guard); the directories the scan found
missing are prepended there when that instruction is the stage's last LD_LIBRARY_PATH assignment, or else go
into one new ENV line after the target stage's last ENV (after its FROM and ARGs when it has none).
`RUN ldconfig` fixes go after the stage's last RUN/COPY/ADD, as root."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ldfix.dockerfile.entries import KEY, PLAIN_SELF, apply_spans
from ldfix.dockerfile.model import ROOT_USERS, Analysis, Stage, env_assignments
from ldfix.dockerfile.parser import Dockerfile, Instruction
from ldfix.dockerfile.splice import rewrite
from ldfix.dockerfile.steplint import StepFindings
from ldfix.dockerfile.words import word_spans

LEGACY = re.compile(r"^[ \t]*(\S+)([ \t\r\n\v\f]+)")


@dataclass
class Edit:
    after: int  # insert after this 1-based line (0 = at the top) ...
    replace: int = 0  # ... replacing this many lines that follow it
    lines: list[str] = field(default_factory=list)


@dataclass
class Plan:
    edits: list[Edit]
    env_line: str | None  # the line that carries the LD_LIBRARY_PATH fix, upper case (for --env-line)
    repaired: list[int]  # first lines of instructions rewritten in place
    inserted: int | None  # the line after which new lines go
    dropped: list[str]  # entries a repair removed

    @property
    def changed(self) -> bool:
        return bool(self.edits)


def keyword_case(df: Dockerfile) -> bool:
    """True when the file writes its instructions in lower case (so new lines do too)."""
    lower = sum(1 for i in df.instructions if i.keyword.islower())
    return lower * 2 > len(df.instructions)


def _kw(df: Dockerfile, name: str) -> str:
    return name.lower() if keyword_case(df) else name.upper()


def _value_offset(instr: Instruction, sf: StepFindings, escape: str) -> tuple[int, list[tuple[int, int, str]]] | None:
    """Where the assignment's raw value starts in the instruction's arguments, and the extra edit that turns a
    legacy `KEY value` into `KEY=value`."""
    a = sf.step.assignment
    if a.legacy:
        m = LEGACY.match(instr.args)
        if m is None or not instr.args[m.end():].startswith(a.raw):
            return None
        return m.end(), ([(m.end(1), m.end(), "=")] if sf.to_key_value else [])
    assignments, _ = env_assignments(instr, escape)
    nth = next((n for n, x in enumerate(assignments) if x is a or (x.key == a.key and x.raw == a.raw)), None)
    words = word_spans(instr.args, escape)
    if nth is None or nth >= len(words) or words[nth][0] != f"{a.key}={a.raw}":
        return None
    return words[nth][1] + len(a.key) + 1, []


def rewritten(df: Dockerfile, sf: StepFindings, prepend: list[str]) -> tuple[list[str], str] | None:
    """The assignment's instruction with its findings' entry edits applied, in its own layout, and the new raw
    value. An instruction left with nothing but `LD_LIBRARY_PATH=$LD_LIBRARY_PATH` goes (no lines)."""
    instr = sf.step.assignment.instr
    where = _value_offset(instr, sf, df.escape)
    spans = sf.spans(prepend)
    if where is None or spans is None:
        return None
    at, extra = where
    new_raw = apply_spans(sf.step.assignment.raw, spans)
    lines = rewrite(df, instr, extra + [(at + x, at + y, t) for x, y, t in spans])
    if lines is None:
        return None
    assignments, _ = env_assignments(instr, df.escape)
    if len(assignments) == 1 and (PLAIN_SELF.match(new_raw) or (not new_raw and not sf.step.before)):
        return [], new_raw
    return lines, new_raw


def _insert_point(stage: Stage) -> int:
    last_env = None
    for instr in stage.body:
        if instr.name == "env":
            last_env = instr
    if last_env is not None:
        return last_env.end
    end = stage.from_instr.end
    for instr in stage.body:
        if instr.name != "arg":
            break
        end = instr.end
    return end


def _user_at(an: Analysis, stage: Stage, line: int, base_user: str) -> str:
    user = base_user
    for st in an.chain(stage):
        for instr in st.body:
            if instr.start > line and st is stage:
                return user
            if instr.name == "user":
                user = instr.args.strip()
    return user


def plan(an: Analysis, stage: Stage, lint: list[StepFindings], add_dirs: list[str], run_lines: list[str],
         base_user: str = "", reason: str = "", skip: frozenset[int] = frozenset()) -> Plan:
    """The edits: each repairable LD_LIBRARY_PATH instruction (except those starting on a line in `skip`)
    rewritten entry by entry in its own layout, the missing directories in front of the target stage's last
    assignment when that one is rewritten anyway (else on a new ENV line), and the RUN lines."""
    df = an.df
    edits: list[Edit] = []
    repaired: list[int] = []
    dropped: list[str] = []
    stage_ids = {st.index for st in an.chain(stage)}
    steps = [sf for sf in lint if sf.step.stage in stage_ids]
    last_in_target = None
    for sf in steps:
        if sf.step.stage == stage.index:
            last_in_target = sf
    fold = last_in_target is not None and last_in_target.repairable and bool(add_dirs) and \
        last_in_target.step.assignment.instr.start not in skip
    env_line = None
    folded = False
    done: set[int] = set()
    for sf in steps:
        instr = sf.step.assignment.instr
        if not sf.repairable or instr.start in done or instr.start in skip:
            continue
        done.add(instr.start)
        prepend = add_dirs if (fold and sf is last_in_target) else []
        got = rewritten(df, sf, prepend)
        if got is None:
            continue
        lines, new_raw = got
        found = sf.found or []
        dropped += [found[c.index].text for c in sf.changes if c.text is None]
        edits.append(Edit(instr.start - 1, instr.end - instr.start + 1, lines))
        repaired.append(instr.start)
        if sf is last_in_target:
            env_line = f"ENV {KEY}={new_raw}"
            folded = bool(prepend)
    inserted = None
    if add_dirs and not folded:
        at = _insert_point(stage)
        dirs = ":".join(add_dirs)
        line = f'{_kw(df, "env")} {KEY}="{dirs}${{{KEY}:+:${{{KEY}}}}}"'
        env_line = f'ENV {KEY}="{dirs}${{{KEY}:+:${{{KEY}}}}}"'
        comment = f"# ldfix: {reason}" if reason else None
        edits.append(Edit(at, 0, [*([comment] if comment else []), line]))
        inserted = at
    if run_lines:
        at = _insert_point(stage)
        for instr in stage.body:
            if instr.name in ("run", "copy", "add") and instr.end > at:
                at = instr.end
        user = _user_at(an, stage, at, base_user)
        lines = [_cased(df, r) for r in run_lines]
        if user not in ROOT_USERS:
            lines = [f"{_kw(df, 'user')} root", *lines, f"{_kw(df, 'user')} {user}"]
        edits.append(Edit(at, 0, lines))
        inserted = at if inserted is None else inserted
    return Plan(sorted(edits, key=lambda e: e.after), env_line, repaired, inserted, dropped)


def _cased(df: Dockerfile, line: str) -> str:
    keyword, _, rest = line.partition(" ")
    return f"{_kw(df, keyword)} {rest}"


def apply(df: Dockerfile, edits: list[Edit]) -> bytes:
    """The file with the edits spliced in: untouched lines are the original bytes; new lines use the file's
    line ending; the BOM stays."""
    eol = df.eol
    lines = list(df.lines)
    out: list[bytes] = []
    pos = 0  # lines consumed
    for edit in sorted(edits, key=lambda e: e.after):
        out.extend(lines[pos:edit.after])
        if edit.after > pos:
            pos = edit.after
        if out and not out[-1].endswith(b"\n"):
            out[-1] += eol  # the file's last line had no newline and we add after it
        replaced = lines[pos:pos + edit.replace]
        keep_eol = eol
        if replaced and not replaced[-1].endswith(b"\n"):
            keep_eol = b"" if pos + edit.replace == len(lines) else eol
        for i, text in enumerate(edit.lines):
            last = i == len(edit.lines) - 1
            out.append(text.encode("utf-8") + (keep_eol if (last and replaced) else eol))
        pos += edit.replace
    out.extend(lines[pos:])
    return (b"\xef\xbb\xbf" if df.bom else b"") + b"".join(out)


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    """`diff -u` of the two versions, `\\ No newline at end of file` where a side ends without one."""
    a = old.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    b = new.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    out = []
    for line in difflib.unified_diff(a, b, f"a/{path}", f"b/{path}"):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
