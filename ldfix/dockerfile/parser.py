"""A span-preserving Dockerfile reader that follows BuildKit's parser (frontend/dockerfile/parser, Apache-2.0):
the same line splitting, BOM, directive block, escape token, continuation rule, comment and empty lines inside
continuations, heredocs and instruction splitting. It never re-serialises anything: every instruction keeps
the 1-based span of physical lines it came from, so an edit can splice whole lines and leave the rest
byte-identical. Errors BuildKit would report are collected (with their line) instead of raised."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ldfix.dockerfile.words import heredoc_words

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
DIRECTIVE_KEYS = ("syntax", "escape", "check")
HEREDOC_INSTRUCTIONS = ("run", "copy", "add")
KNOWN = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label", "maintainer",
         "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
MAX_LINE = 64 * 1024
# Go's unicode.IsSpace, which BuildKit's trimLeadingWhitespace and isComment use
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"


@dataclass(frozen=True)
class ParseError:
    line: int
    message: str


@dataclass
class Heredoc:
    name: str
    expand: bool
    chomp: bool
    content: str


@dataclass
class Instruction:
    keyword: str  # as written (case kept)
    args: str  # the joined text after the keyword and flags
    flags: list[str]
    start: int  # 1-based first physical line
    end: int  # 1-based last physical line (continuations, dropped comments, heredoc bodies included)
    heredocs: list[Heredoc] = field(default_factory=list)
    sub: Instruction | None = None  # the trigger of an ONBUILD

    @property
    def name(self) -> str:
        return self.keyword.lower()

    @property
    def is_json(self) -> bool:
        return is_json_array(self.args)


@dataclass
class Dockerfile:
    data: bytes
    lines: list[bytes]  # physical lines with their terminators (the first without its BOM)
    bom: bool
    eol: bytes  # the file's line ending (b"\r\n" when most lines use it)
    escape: str
    directives: dict[str, tuple[str, int]]  # key -> (value, line)
    directive_end: int  # number of leading lines that belong to the directive block
    instructions: list[Instruction]
    errors: list[ParseError]

    def text(self, start: int, end: int) -> str:
        return b"".join(self.lines[start - 1:end]).decode("utf-8", "replace")


def is_json_array(args: str) -> bool:
    text = args.strip()
    if not text.startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def is_comment(line: str) -> bool:
    return _trim_newline(line).lstrip(GO_SPACE).startswith("#")


def is_blank(line: str) -> bool:
    return _trim_newline(line).strip(GO_SPACE) == ""


def continuation_pattern(escape: str) -> re.Pattern[str]:
    e = re.escape(escape)
    return re.compile(rf"([^{e}]){e}[ \t]*$|^{e}[ \t]*$")


def split_lines(data: bytes) -> list[bytes]:
    """Physical lines, each keeping its terminator (as bufio.Scanner with BuildKit's split function)."""
    lines = data.splitlines(keepends=True)
    # bytes.splitlines also splits on \r, \v, \f, \x1c-\x1e, \x85: BuildKit splits on \n only
    out: list[bytes] = []
    buf = b""
    for piece in lines:
        buf += piece
        if piece.endswith(b"\n"):
            out.append(buf)
            buf = b""
    if buf:
        out.append(buf)
    return out


# Over 60 lines on purpose: one line-by-line state machine (continuations, heredocs, directives) that
# mirrors BuildKit's parser step for step; split, the states would have to travel between functions.
def parse(data: bytes) -> Dockerfile:
    bom = data.startswith(b"\xef\xbb\xbf")
    lines = split_lines(data[3:] if bom else data)
    crlf = sum(1 for line in lines if line.endswith(b"\r\n"))
    eol = b"\r\n" if crlf and crlf * 2 >= sum(1 for line in lines if line.endswith(b"\n")) else b"\n"
    texts = [line.decode("utf-8", "surrogateescape") for line in lines]
    escape = "\\"
    directives: dict[str, tuple[str, int]] = {}
    errors: list[ParseError] = []
    instructions: list[Instruction] = []
    directives_done = False
    directive_end = 0
    regex = continuation_pattern(escape)
    i = 0  # index of the next physical line
    n = len(texts)

    def directive(raw: str, lineno: int) -> None:
        nonlocal directives_done, escape, regex, directive_end
        if directives_done:
            return
        m = DIRECTIVE.match(_trim_newline(raw).lstrip(GO_SPACE))
        if m is None or m.group(1).lower() not in DIRECTIVE_KEYS:
            directives_done = True
            return
        key, value = m.group(1).lower(), m.group(2)
        if key in directives:
            errors.append(ParseError(lineno, f"only one {key} parser directive can be used"))
        directives[key] = (value, lineno)
        directive_end = lineno
        if key == "escape":
            if value not in ("\\", "`"):
                errors.append(ParseError(lineno, f"invalid escape token '{value}' does not match ` or \\"))
            else:
                escape = value
                regex = continuation_pattern(escape)

    while i < n:
        raw = texts[i]
        i += 1
        lineno = i
        if len(lines[i - 1]) > MAX_LINE:
            errors.append(ParseError(lineno, f"dockerfile line greater than max allowed size of {MAX_LINE - 1}"))
            break
        directive(raw, lineno)
        if is_comment(raw):
            continue
        line = _trim_newline(raw).lstrip(GO_SPACE)
        m = regex.search(line)
        end_of_line = m is None
        if m is not None:
            line = line[:m.start()] + (m.group(1) or "")
        if end_of_line and line == "":
            continue
        start = lineno
        while not end_of_line and i < n:
            raw = texts[i]
            i += 1
            if is_comment(raw):
                continue
            if is_blank(raw):
                continue
            cont = _trim_newline(raw)
            m = regex.search(cont)
            end_of_line = m is None
            if m is not None:
                cont = cont[:m.start()] + (m.group(1) or "")
            line += cont
        if line.strip() == "":
            continue
        instr = _split(line, start, i)
        target = instr.sub if instr.name == "onbuild" and instr.sub is not None else instr
        if target.name in HEREDOC_INSTRUCTIONS and not target.is_json and "<<" in line:
            for fd_chomp_name in heredoc_words(target.args):
                chomp, name, expand = fd_chomp_name
                body: list[str] = []
                terminated = False
                while i < n:
                    raw = texts[i]
                    i += 1
                    candidate = _trim_newline(raw)
                    if chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    errors.append(ParseError(start, "unterminated heredoc"))
                target.heredocs.append(Heredoc(name, expand, chomp, "".join(body)))
            instr.end = i
        instructions.append(instr)
    if not instructions and not errors:
        errors.append(ParseError(1, "file with no instructions"))
    return Dockerfile(data, lines, bom, eol, escape, directives, directive_end, instructions, errors)


def _split(line: str, start: int, end: int) -> Instruction:
    """splitCommand + extractBuilderFlags: `NAME [--flag...] args`; ONBUILD parses its trigger recursively."""
    text = line.strip()
    parts = re.split(r"[ \t\r\n\v\f]+", text, maxsplit=1)
    keyword = parts[0]
    rest = parts[1] if len(parts) > 1 else ""
    flags: list[str] = []
    if keyword.lower() != "onbuild":
        rest, flags = _flags(rest)
    instr = Instruction(keyword, rest, flags, start, end)
    if keyword.lower() == "onbuild" and rest.strip():
        instr.sub = _split(rest, start, end)
    return instr


def _flags(rest: str) -> tuple[str, list[str]]:
    flags: list[str] = []
    while True:
        stripped = rest.lstrip(" \t")
        if not stripped.startswith("--"):
            return stripped, flags
        word, _, remainder = stripped.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            remainder = more + " " + remainder
        if word == "--":
            return remainder.lstrip(" \t"), flags
        flags.append(word)
        rest = remainder
