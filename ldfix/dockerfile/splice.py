"""Editing an instruction in place, keeping its layout: every character of the joined instruction is mapped
back to its physical line and column (continuations, indentation, comment lines inside the instruction), so
an edit of the joined text becomes edits of the lines that hold those characters. Lines are never joined; a
continuation line whose content the edit removed entirely goes, and the line before it then ends the
instruction when it was the last one."""

from __future__ import annotations

from dataclasses import dataclass

from ldfix.dockerfile.parser import GO_SPACE, Dockerfile, Instruction, continuation_pattern, is_blank, is_comment


@dataclass
class Layout:
    joined: str  # the instruction as the parser joined it
    where: list[tuple[int, int]]  # for each character of `joined`: (index into `lines`, column)
    lines: list[str]  # the instruction's physical lines, without their line endings
    logical: list[bool]  # whether a line carries instruction text (not a comment or blank line inside it)


def layout(df: Dockerfile, instr: Instruction) -> Layout:
    regex = continuation_pattern(df.escape)
    lines = [b.decode("utf-8", "surrogateescape").rstrip("\r\n") for b in df.lines[instr.start - 1:instr.end]]
    joined = ""
    where: list[tuple[int, int]] = []
    logical = [False] * len(lines)
    for n, raw in enumerate(lines):
        if n and (is_comment(raw) or is_blank(raw)):
            continue
        offset = len(raw) - len(raw.lstrip(GO_SPACE)) if n == 0 else 0
        text = raw[offset:]
        m = regex.search(text)
        if m is not None:
            text = text[:m.start()] + (m.group(1) or "")
        logical[n] = True
        joined += text
        where += [(n, offset + k) for k in range(len(text))]
        if m is None:
            break
    return Layout(joined, where, lines, logical)


def args_offset(lay: Layout, instr: Instruction) -> int | None:
    """Where the instruction's arguments start in the joined text (None if they are not a plain suffix)."""
    end = len(lay.joined.rstrip())
    start = end - len(instr.args)
    if start < 0 or lay.joined[start:end] != instr.args:
        return None
    return start


def rewrite(df: Dockerfile, instr: Instruction, spans: list[tuple[int, int, str]]) -> list[str] | None:
    """The instruction's physical lines with `spans` ((start, end, text) in offsets of its arguments) applied.
    None when the instruction's text cannot be mapped back to its lines."""
    lay = layout(df, instr)
    base = args_offset(lay, instr)
    if base is None or not lay.where:
        return None
    ends: dict[int, int] = {}  # line -> column after its last instruction character
    firsts: dict[int, int] = {}
    for ln, col in lay.where:
        ends[ln] = col + 1
        firsts.setdefault(ln, col)
    ops: list[tuple[int, int, int, str]] = []  # (line, from column, to column, text)
    for a, b, text in spans:
        la, lb = base + a, base + b
        if la == lb:
            ln, col = lay.where[la] if la < len(lay.where) else (lay.where[-1][0], lay.where[-1][1] + 1)
            ops.append((ln, col, col, text))
            continue
        (l1, c1), (l2, c2) = lay.where[la], lay.where[lb - 1]
        if l1 == l2:
            ops.append((l1, c1, c2 + 1, text))
            continue
        ops.append((l1, c1, ends[l1], text))
        for ln in range(l1 + 1, l2):
            if ln in firsts:
                ops.append((ln, firsts[ln], ends[ln], ""))
        ops.append((l2, firsts[l2], c2 + 1, ""))
    lines = list(lay.lines)
    emptied: set[int] = set()
    for ln, c1, c2, text in sorted(ops, key=lambda o: (o[0], o[1], o[2]), reverse=True):
        lines[ln] = lines[ln][:c1] + text + lines[ln][c2:]
    regex = continuation_pattern(df.escape)
    for ln in range(1, len(lines)):
        if not lay.logical[ln]:
            continue
        m = regex.search(lines[ln])
        content = lines[ln][:m.start()] + (m.group(1) or "") if m is not None else lines[ln]
        if not content.strip(" \t"):
            emptied.add(ln)
    last = max(ln for ln in range(len(lines)) if lay.logical[ln])
    if last in emptied:  # the instruction now ends on the line before: that line loses its continuation
        keep = max(ln for ln in range(last) if lay.logical[ln] and ln not in emptied)
        m = regex.search(lines[keep])
        if m is not None:
            lines[keep] = (lines[keep][:m.start()] + (m.group(1) or "")).rstrip(" \t")
    return [line for ln, line in enumerate(lines) if ln not in emptied]
