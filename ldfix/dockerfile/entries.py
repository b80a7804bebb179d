"""An LD_LIBRARY_PATH value as written: its entries with their offsets in the raw text, what each one expands
to, and the edit that removes or changes some of them while every other character (variable references,
conditional expansions, quotes) stays as written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ldfix.diagnose.rules.ldpath_bad import GUARD
from ldfix.dockerfile.shell import ShellError, expand

KEY = "LD_LIBRARY_PATH"
SELF = "\x00ldfix-self\x00"  # stands for the value before the assignment while expanding
MARK = "\x01"  # stands for a top-level separator while expanding
PLAIN_SELF = re.compile(r'^("?)\$(LD_LIBRARY_PATH|\{LD_LIBRARY_PATH\})\1$')
GUARD_AFTER = "${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH}:}"  # self first: its separator only when it is set
GUARD_BEFORE = GUARD  # self last: the guard ldfix always appends the inherited value with


@dataclass(frozen=True)
class RawEntry:
    start: int  # the entry's text in the raw value, [start, end), unbalanced edge quotes left out
    end: int
    full: tuple[int, int]  # the span between separators (edge quotes included)
    text: str
    expanded: tuple[str, ...]  # what it expands to: entries (SELF for the value before the line)

    @property
    def has_ref(self) -> bool:
        """Whether it names a variable other than the inherited LD_LIBRARY_PATH as a plain self-reference."""
        return "$" in self.text and not self.plain_self

    @property
    def plain_self(self) -> bool:
        return PLAIN_SELF.match(self.text) is not None

    def cut_text(self) -> str | None:
        """The entry with its stray '#' text cut off, its quotes kept balanced (None: no '#')."""
        cut = self.hash_cut()
        if cut is None:
            return None
        text = self.text[:cut]
        return text + "".join(q for q in "\"'" if text.count(q) % 2 and not self.text.count(q) % 2)

    def hash_cut(self) -> int | None:
        """Where a stray '#' starts, outside any ${...}, with the whitespace before it (None: no '#')."""
        depth = 0
        for i, ch in enumerate(self.text):
            if ch == "{" and i and self.text[i - 1] == "$":
                depth += 1
            elif ch == "}" and depth:
                depth -= 1
            elif ch == "#" and not depth:
                return len(self.text[:i].rstrip(" \t"))
        return None


def _spans(raw: str) -> list[tuple[int, int]]:
    """The top-level entries of a raw value: split at ':' and ';' outside ${...}."""
    out = []
    depth = 0
    begin = 0
    for i, ch in enumerate(raw):
        if ch == "{" and i and raw[i - 1] == "$":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch in ":;" and not depth:
            out.append((begin, i))
            begin = i + 1
    out.append((begin, len(raw)))
    return out


def _core(raw: str, begin: int, end: int) -> tuple[int, int]:
    text = raw[begin:end]
    for q in "\"'":
        if text.count(q) % 2 and text.startswith(q):
            begin += 1
            text = text[1:]
        if text.count(q) % 2 and text.endswith(q):
            end -= 1
            text = text[:-1]
    return begin, end


def entries(raw: str, scope: Mapping[str, str], escape: str, before: str | None = SELF) -> list[RawEntry] | None:
    """The entries of a raw LD_LIBRARY_PATH value, each with what it expands to under `scope`, with
    $LD_LIBRARY_PATH standing for `before` (SELF: a marker for the value before the line; None: unset).
    None when the value cannot be split that way (its expansion fails)."""
    spans = _spans(raw)
    marked = "".join(raw[a:b] + (MARK if i < len(spans) - 1 else "") for i, (a, b) in enumerate(spans))
    try:
        env = {k: v for k, v in scope.items() if k != KEY}
        pieces = expand(marked, env if before is None else {**env, KEY: before}, escape).split(MARK)
    except ShellError:
        return None
    if len(pieces) != len(spans):
        return None
    out = []
    for (a, b), piece in zip(spans, pieces, strict=True):
        start, end = _core(raw, a, b)
        out.append(RawEntry(start, end, (a, b), raw[start:end], tuple(re.split(r"[:;]", piece))))
    return out


@dataclass(frozen=True)
class Change:
    """What to do with one entry: drop it, or give it new text."""

    index: int
    text: str | None = None  # None = drop


def edits(raw: str, found: list[RawEntry], changes: list[Change], prepend: list[str], guard: bool
          ) -> list[tuple[int, int, str]]:
    """The (start, end, new text) spans, in raw offsets, that drop or change the given entries (with one
    separator each), put `prepend` first, and guard a plain self-reference when `guard` is set. The entries
    kept are anchors: only the text between them (separators, dropped entries) and their own changed text is
    rewritten, and quote characters outside every entry stay where they were."""
    by_index = {c.index: c for c in changes}
    kept = [i for i in range(len(found)) if not (i in by_index and by_index[i].text is None)]
    texts = {i: found[i].text if i not in by_index else str(by_index[i].text) for i in kept}
    items: list[int | str] = [*prepend, *kept]
    joiners = [":"] * max(len(items) - 1, 0)  # joiners[j] goes between items[j] and items[j + 1]
    for j in range(len(items) - 1):
        a, b = items[j], items[j + 1]
        if isinstance(a, int) and isinstance(b, int) and b == a + 1:
            joiners[j] = raw[found[a].full[1]]
    if guard and len(items) > 1:
        for j, item in enumerate(items):
            if isinstance(item, int) and found[item].plain_self:
                q = '"' if found[item].text.startswith('"') else ""
                if j < len(items) - 1:
                    texts[item], joiners[j] = q + GUARD_AFTER + q, ""
                else:
                    texts[item], joiners[j - 1] = q + GUARD_BEFORE + q, ""
    out: list[tuple[int, int, str]] = []
    head = "".join(f"{p}{joiners[j] if j < len(joiners) else ''}" for j, p in enumerate(prepend))
    if not kept:
        return _minimal(raw, _region(raw, 0, len(raw), found, head, out))
    _region(raw, 0, found[kept[0]].start, found, head, out)
    for n, i in enumerate(kept):
        if texts[i] != found[i].text:
            out.append((found[i].start, found[i].end, texts[i]))
        end = found[kept[n + 1]].start if n + 1 < len(kept) else len(raw)
        _region(raw, found[i].end, end, found, joiners[len(prepend) + n] if n + 1 < len(kept) else "", out)
    return _minimal(raw, out)


def _minimal(raw: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Touching spans joined, each trimmed to the characters that really change."""
    merged: list[tuple[int, int, str]] = []
    for a, b, text in sorted(spans, key=lambda s: (s[0], s[1])):
        if merged and a <= merged[-1][1]:
            pa, pb, pt = merged[-1]
            merged[-1] = (pa, max(pb, b), pt + text)
        else:
            merged.append((a, b, text))
    out = []
    for a, b, text in merged:
        old = raw[a:b]
        lead = 0
        while lead < min(len(old), len(text)) and old[lead] == text[lead]:
            lead += 1
        tail = 0
        while tail < min(len(old), len(text)) - lead and old[-1 - tail] == text[-1 - tail]:
            tail += 1
        if old != text:
            out.append((a + lead, b - tail, text[lead:len(text) - tail]))
    return out


def _region(raw: str, a: int, b: int, found: list[RawEntry], new: str, out: list[tuple[int, int, str]]
            ) -> list[tuple[int, int, str]]:
    """Replace raw[a:b] (separators and dropped entries) by `new`, keeping the quote characters that lie
    outside every entry, with the common head and tail of old and new left alone."""
    inside = [(e.start, e.end) for e in found]
    quotes = [k for k in range(a, b) if raw[k] in "\"'" and not any(s <= k < t for s, t in inside)]
    first_sep = next((k for k in range(a, b) if raw[k] in ":;" and not any(s <= k < t for s, t in inside)), None)
    built = ""
    placed = False
    for k in range(a, b):
        if k == first_sep:
            built += new
            placed = True
        if k in quotes:
            built += raw[k]
    if not placed:
        built = (built + new) if quotes and quotes[0] == a else (new + built)
    out.append((a, b, built))
    return out


def apply_spans(raw: str, spans: list[tuple[int, int, str]]) -> str:
    out = raw
    for a, b, text in sorted(spans, key=lambda s: (s[0], s[1]), reverse=True):
        out = out[:a] + text + out[b:]
    return out
