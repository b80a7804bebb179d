"""The Dockerfile reader against BuildKit's rules (the reference's hand-written cases), and the shell lexer's
expansion forms."""

from __future__ import annotations

import pytest

from ldfix.dockerfile.model import analyze, evaluate
from ldfix.dockerfile.parser import parse
from ldfix.dockerfile.shell import ShellError, expand


def spans(data: bytes) -> list[tuple[str, int, int, str]]:
    return [(i.keyword, i.start, i.end, i.args) for i in parse(data).instructions]


def test_bom_and_crlf() -> None:
    df = parse(b"\xef\xbb\xbfFROM a\r\nENV A=1\r\n")
    assert df.bom and df.eol == b"\r\n"
    assert spans(b"\xef\xbb\xbfFROM a\r\nENV A=1\r\n") == [("FROM", 1, 1, "a"), ("ENV", 2, 2, "A=1")]


def test_directive_block_with_check_then_escape() -> None:
    df = parse(b"# syntax=docker/dockerfile:1\n# check=skip=all\n# escape=`\nFROM a\nRUN echo `\n  b\n")
    assert df.escape == "`" and set(df.directives) == {"syntax", "check", "escape"} and df.directive_end == 3
    assert spans(df.data)[1] == ("RUN", 5, 6, "echo   b")


def test_directive_after_blank_line_is_a_comment() -> None:
    df = parse(b"# syntax=x\n\n# escape=`\nFROM a\nRUN a \\\n b\n")
    assert df.escape == "\\" and "escape" not in df.directives
    assert spans(df.data)[1] == ("RUN", 5, 6, "a  b")


def test_repeated_directive_is_an_error() -> None:
    assert parse(b"# escape=`\n# escape=\\\nFROM a\n").errors[0].message == "only one escape parser directive can be used"


def test_backtick_escape_keeps_backslashes() -> None:
    assert spans(b"# escape=`\nFROM a\nRUN dir C:\\Windows\\ `\n  /s\n")[1] == ("RUN", 3, 4, "dir C:\\Windows\\   /s")


def test_comment_and_empty_lines_inside_a_continuation() -> None:
    assert spans(b"FROM a\nRUN a \\\n    # dropped\n\n  && b\nENV X=1\n")[1:] == [("RUN", 2, 5, "a   && b"),
                                                                              ("ENV", 6, 6, "X=1")]


def test_continuation_only_when_the_escape_is_the_last_non_blank_character() -> None:
    got = spans(b"FROM a\nRUN a \\ \t\n b\nRUN c \\  #x\n&& d\n")
    assert got[1] == ("RUN", 2, 3, "a  b")
    assert got[2][:3] == ("RUN", 4, 4) and got[3][:3] == ("&&", 5, 5)
    assert spans(b"FROM a\nRUN a \\\\\nRUN b\n")[1][:3] == ("RUN", 2, 2)  # an escaped escape does not continue


def test_heredoc_bodies_are_not_instructions() -> None:
    df = parse(b"FROM a\nRUN <<EOF\nENV LD_LIBRARY_PATH=/x\nEOF\nCOPY <<-'END' /f\n\tbody $X\n\tEND\nENV B=1\n")
    assert [(i.keyword, i.start, i.end) for i in df.instructions] == [("FROM", 1, 1), ("RUN", 2, 4), ("COPY", 5, 7),
                                                                      ("ENV", 8, 8)]
    assert df.instructions[2].heredocs[0].name == "END" and not df.instructions[2].heredocs[0].expand


def test_json_run_has_no_heredoc_and_unterminated_heredoc_is_an_error() -> None:
    assert spans(b'FROM a\nRUN ["echo", "<<EOF"]\nENV A=1\n')[2] == ("ENV", 3, 3, "A=1")
    assert parse(b"FROM a\nRUN <<EOF\nnever\n").errors[0].message == "unterminated heredoc"


def test_lowercase_instructions_and_no_final_newline() -> None:
    assert spans(b"from a\nenv A=1") == [("from", 1, 1, "a"), ("env", 2, 2, "A=1")]


def test_unknown_instruction_and_empty_file() -> None:
    an = analyze(parse(b"FROM a\n&& b\n"), {})
    assert an.errors[0].line == 2 and an.errors[0].message == "unknown instruction: &&"
    assert parse(b"# only a comment\n\n").errors[0].message == "file with no instructions"


def test_legacy_env_with_equals_and_hash() -> None:
    an = analyze(parse(b"FROM a\nENV ONE TWO= THREE=world#x\n"), {})
    env = evaluate(an, an.stages[0], {}, {})
    assert env.env["ONE"] == "TWO= THREE=world#x"


def test_env_in_one_instruction_sees_values_from_before() -> None:
    an = analyze(parse(b"FROM a\nENV abc=hi\nENV abc=bye def=$abc\n"), {})
    assert evaluate(an, an.stages[0], {}, {}).env["def"] == "hi"


def test_multi_stage_inheritance_and_meta_args() -> None:
    an = analyze(parse(b"ARG CUDA=11.8.0\nFROM nvidia/cuda:${CUDA}-runtime AS Base\nENV X=1\nFROM base\nENV Y=$X\n"),
                 {"CUDA": "12.1.0"})
    assert an.stages[0].base == "nvidia/cuda:12.1.0-runtime" and an.stages[0].name == "base"
    assert an.stages[1].parent == 0 and an.root_base(an.stages[1]) == "nvidia/cuda:12.1.0-runtime"
    assert evaluate(an, an.stages[1], {}, {}).env["Y"] == "1"


@pytest.mark.parametrize(("word", "env", "want"), [
    ("${L:+:${L}}", {"L": "/a"}, ":/a"),
    ("${L:+:${L}}", {}, ""),
    ("${L:+:${L}}", {"L": ""}, ""),
    ("${L+x}", {"L": ""}, "x"),
    ("${L:-d}", {"L": ""}, "d"),
    ("${L-d}", {"L": ""}, ""),
    ("'$L':x", {"L": "/a"}, "$L:x"),
    ('"$L # not a comment"', {"L": "/a"}, "/a # not a comment"),
    ("\\$L", {"L": "/a"}, "$L"),
    ("$L:/x#", {}, ":/x#"),
    ("${L#/usr}", {"L": "/usr/lib"}, "/lib"),
    ("${L%/*}", {"L": "/usr/lib"}, "/usr"),
])
def test_expansion(word: str, env: dict[str, str], want: str) -> None:
    assert expand(word, env) == want


def test_expansion_errors() -> None:
    for bad in ('"open', "'open", "${L", "${:x}"):
        with pytest.raises(ShellError):
            expand(bad, {})
    with pytest.raises(ShellError, match="L: is not allowed to be unset"):
        expand("${L?}", {})


def test_base_onbuild_env_triggers() -> None:
    from ldfix.dockerfile.model import apply_onbuild

    env = apply_onbuild({"LD_LIBRARY_PATH": "/a"}, ["ENV LD_LIBRARY_PATH=/opt/x:$LD_LIBRARY_PATH", "RUN echo",
                                                    "ENV B legacy value"])
    assert env == {"LD_LIBRARY_PATH": "/opt/x:/a", "B": "legacy value"}
