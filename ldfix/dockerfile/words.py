"""Splitting an instruction's arguments into words as BuildKit does: `parseWords` for the instruction's
arguments, and the heredoc scan's whitespace split that finds `<<[-]WORD` markers."""

from __future__ import annotations

import re

HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")


def heredoc_words(args: str) -> list[tuple[bool, str, bool]]:
    """(chomp, name, expand) for each `<<[-]WORD` word of the line, in order (heredocsFromLine)."""
    out = []
    for word in _shell_words(args):
        m = HEREDOC_WORD.match(word)
        if m is None or not m.group(3):
            continue
        name = m.group(3)
        expand = True
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
            name, expand = name[1:-1], False
        elif "'" in name or '"' in name:
            name, expand = name.replace("'", "").replace('"', ""), False
        out.append((m.group(2) == "-", name, expand))
    return out


def _shell_words(text: str) -> list[str]:
    """Whitespace-separated words with quotes kept (raw quotes, raw escapes), as the heredoc scan splits."""
    words: list[str] = []
    word = ""
    quote = ""
    in_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            word += ch
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                word += text[i + 1]
                i += 1
        elif ch in " \t\n":
            if in_word:
                words.append(word)
            word, in_word = "", False
        else:
            in_word = True
            word += ch
            if ch in "'\"":
                quote = ch
            elif ch == "\\" and i + 1 < len(text):
                word += text[i + 1]
                i += 1
        i += 1
    if in_word:
        words.append(word)
    return words


def parse_words(rest: str, escape: str) -> list[str]:
    """BuildKit's parseWords: split on whitespace, honouring quotes and the escape token; quotes and escapes
    stay in the words (the shell lexer removes them later)."""
    return [word for word, _, _ in word_spans(rest, escape)]


def word_spans(rest: str, escape: str) -> list[tuple[str, int, int]]:
    """parse_words with each word's [start, end) offsets in `rest` (an edit can then change one word only)."""
    in_spaces, in_word, in_quote = 0, 1, 2
    words: list[tuple[str, int, int]] = []
    begin = 0
    phase = in_spaces
    word = ""
    quote = ""
    blank_ok = False
    pos = 0
    n = len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if ch.isspace():
                pos += 1
                continue
            phase = in_word
            begin = pos
        if pos == n:
            if blank_ok or word:
                words.append((word, begin, pos))
            break
        if phase == in_word:
            if ch.isspace():
                phase = in_spaces
                if blank_ok or word:
                    words.append((word, begin, pos))
                word, blank_ok = "", False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word += ch
            ch = rest[pos]
        word += ch
        pos += 1
    return words
