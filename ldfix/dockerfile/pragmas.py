"""Where a finding about an instruction goes and whether the file's author silenced it: the physical line and
column of the LD_LIBRARY_PATH key, the comment block above an instruction, and the `# ldfix ignore=CODE` /
"keep compat" / "on purpose" comments in it."""

from __future__ import annotations

import re

from ldfix.dockerfile.entries import KEY
from ldfix.dockerfile.parser import Dockerfile, Instruction

KEY_AT = re.compile(rf"(?<![$\w{{]){KEY}(?==|[ \t])")  # the key, not a $LD_LIBRARY_PATH reference
PRAGMA = re.compile(r"#\s*ldfix\s+ignore\s*=\s*([A-Z_,\s]+)", re.I)
KEEP = re.compile(r"#.*\bkeep\b.*\b(compat|stubs?)\b", re.I)
ON_PURPOSE = re.compile(r"#.*\b(overrid\w*|replac\w*|on purpose|intentional\w*|deliberate\w*)\b", re.I)


def key_position(df: Dockerfile | None, instr: Instruction) -> tuple[int, int | None]:
    """(physical line, 1-based column) of the LD_LIBRARY_PATH key in an instruction that spans lines."""
    if df is None:
        return instr.start, None
    for number in range(instr.start, instr.end + 1):
        m = KEY_AT.search(df.text(number, number))
        if m is not None:
            return number, m.start() + 1
    return instr.start, None


def comments_above(df: Dockerfile | None, line: int) -> list[str]:
    out: list[str] = []
    number = line - 1
    while df is not None and number >= 1:
        text = df.text(number, number).strip()
        if not text.startswith("#"):
            break
        out.append(text)
        number -= 1
    return out


def suppressed(df: Dockerfile | None, line: int, code: str) -> bool:
    """A `# ldfix ignore=CODE` pragma, or a comment saying the compat / stubs entry is kept on purpose, in the
    comment block right above the instruction (Dockerfile comments are whole lines)."""
    for text in comments_above(df, line):
        m = PRAGMA.search(text)
        if m and code in {c.strip().upper() for c in m.group(1).split(",")}:
            return True
        keep = KEEP.search(text)
        if keep and code == ("COMPAT" if keep.group(1).lower() == "compat" else "STUB"):
            return True
    return False
