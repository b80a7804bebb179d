"""Turning a verified fix into Dockerfile lines, spliced in without touching any other line.

Two kinds of edit: an LD_LIBRARY_PATH ENV that has a finding is rewritten in place (only its own lines, in
key=value form with double quotes, its stray text and empty entries gone, its self-reference guarded); the
directories the scan found missing are prepended there when that instruction is the stage's last
LD_LIBRARY_PATH assignment, or else go into one new ENV line after the target stage's last ENV (after its FROM
and ARGs when it has none). `RUN ldconfig` fixes go after the stage's last RUN/COPY/ADD, as root."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ldfix.dockerfile.lint import KEY, StepFindings
from ldfix.dockerfile.model import ROOT_USERS, Analysis, Assignment, Stage, env_assignments
from ldfix.dockerfile.parser import Dockerfile, Instruction
from ldfix.dockerfile.shell import ShellError, expand
from ldfix.loader.env import SAFE_DIR, in_dir_named

SELF = "\x00ldfix-self\x00"


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


def _render_value(items: list[str]) -> str:
    """Entries joined with ':'; SELF becomes the guard that adds the old value only when it is non-empty."""
    out = ""
    pending_self = False
    for item in items:
        if item == SELF:
            pending_self = True
            continue
        if pending_self:
            out += f"${{{KEY}:+:${{{KEY}}}}}:" + item if out else f"${{{KEY}:+${{{KEY}}}:}}" + item
            pending_self = False
        else:
            out += (":" if out else "") + item
    if pending_self:
        out += f"${{{KEY}:+:${{{KEY}}}}}" if out else f"${{{KEY}}}"
    return out


def repaired_value(a: Assignment, scope: dict[str, str], escape: str, prepend: list[str]) -> tuple[str, list[str]]:
    """The value an LD_LIBRARY_PATH assignment should have: `prepend` first, then its own entries cleaned, the
    self-reference kept (guarded) where it was. Returns (value text for double quotes, dropped entries)."""
    try:
        expanded = expand(a.raw, {**scope, KEY: SELF}, escape)
    except ShellError:
        expanded = a.raw
    items: list[str] = list(prepend)
    dropped: list[str] = []
    seen_self = False
    for raw in re.split(r"[:;]", expanded):
        entry = raw.split("#", 1)[0].strip().strip("'\"`").strip()
        if entry in (SELF, "$" + KEY, "${" + KEY + "}"):  # the literal forms: quoting kept what was meant
            if not seen_self:
                items.append(SELF)
                seen_self = True
            continue
        if SELF in entry or not entry or not SAFE_DIR.match(entry) or in_dir_named(entry, "compat") \
                or in_dir_named(entry, "stubs"):
            if raw:
                dropped.append(raw.replace(SELF, f"${KEY}"))
            continue
        if entry != "/" and entry.endswith("/"):
            entry = entry.rstrip("/")
        if entry not in items:
            items.append(entry)
    return _render_value(items), dropped


def _instruction_line(df: Dockerfile, instr: Instruction, assignments: list[Assignment], new_value: str,
                      target: Assignment) -> str:
    indent = re.match(r"[ \t]*", df.text(instr.start, instr.start)).group(0)  # type: ignore[union-attr]
    words = []
    for a in assignments:
        if a is target:
            words.append(f'{KEY}="{new_value}"')
        else:
            words.append(f"{a.key}={a.raw}")
    flags = "".join(f"{f} " for f in instr.flags)
    return f"{indent}{instr.keyword} {flags}{' '.join(words)}"


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
         base_user: str = "", reason: str = "") -> Plan:
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
    fold = last_in_target is not None and last_in_target.repairable and bool(add_dirs)
    env_line = None
    done: set[int] = set()
    for sf in steps:
        if not sf.repairable or sf.step.assignment.instr.start in done:
            continue
        a = sf.step.assignment
        instr = a.instr
        done.add(instr.start)
        prepend = add_dirs if (fold and sf is last_in_target) else []
        value, gone = repaired_value(a, sf.step.scope, df.escape, prepend)
        dropped += gone
        assignments, _ = env_assignments(instr, df.escape)
        line = _instruction_line(df, instr, assignments, value, next(x for x in assignments if x.raw == a.raw
                                                                      and x.key == a.key))
        edits.append(Edit(instr.start - 1, instr.end - instr.start + 1, [line]))
        repaired.append(instr.start)
        if sf is last_in_target:
            env_line = f'ENV {KEY}="{value}"'
    inserted = None
    if add_dirs and not fold:
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
