"""Variable substitution as BuildKit's shell lexer does it for ENV, ARG, FROM and the other expanding
instructions (frontend/dockerfile/shell/lex.go): quotes removed, `'...'` literal, escapes, `$V`, `${V}`,
`${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?m}`, `${V?m}`, prefix/suffix trims. An unset variable
expands to the empty string."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping


class ShellError(ValueError):
    pass


SPECIAL = "@*#?-$!0"


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def run(self, stop: str = "", raw_escapes: bool = False) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                ch = self.next()
                if ch == self.escape:
                    if raw_escapes:
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                out.append(ch)
        if stop:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ShellError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ShellError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdigit():
                while self.peek().isdigit():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in SPECIAL:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.next()
        ch = self.peek()
        if not ch:
            raise ShellError("syntax error: missing '}'")
        if ch in "{}:":
            raise ShellError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        null_is_unset = False
        mods = ch
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            mods += ch
        if ch in "+-?#%":
            raw = ch in "#%"
            if null_is_unset and raw:
                raise ShellError(f"unsupported modifier ({mods}) in substitution")
            greedy = False
            if raw and self.peek() == ch:
                self.next()
                greedy = True
            word = self.run("}", raw_escapes=raw)
            is_set = name in self.env
            value = self.env.get(name, "")
            empty = null_is_unset and value == ""
            if ch == "-":
                return word if not is_set or empty else value
            if ch == "+":
                return "" if not is_set or empty else word
            if ch == "?":
                if not is_set:
                    raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
                if empty:
                    raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            return _trim(value, word, prefix=ch == "#", greedy=greedy)
        raise ShellError(f"unsupported modifier ({mods}) in substitution")


def _trim(value: str, pattern: str, prefix: bool, greedy: bool) -> str:
    sizes = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for size in sizes:
        part = value[:size] if prefix else value[len(value) - size:]
        if fnmatch.fnmatchcase(part, pattern):
            return value[size:] if prefix else value[:len(value) - size]
    return value


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """ProcessWord: one word (spaces kept) with quotes removed and variables substituted."""
    return _Lexer(word, env, escape).run()
