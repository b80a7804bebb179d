"""The Dockerfile reader against an independent port of BuildKit's parser (e2b-dockerfile-utils, used only
here, as a test oracle): the same instructions with the same 1-based line spans and heredocs, the same ENV
key/value words, and the same syntax errors on the same lines, for the corpus and for generated files."""

from __future__ import annotations

from pathlib import Path

import e2b_dockerfile_utils as oracle
import pytest
from e2b_dockerfile_utils.syntax import DockerfileSyntaxError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldfix.dockerfile.model import analyze, env_assignments
from ldfix.dockerfile.parser import parse

CORPUS = Path(__file__).resolve().parent.parent.parent / "fixtures" / "dockerfiles" / "corpus"


def compare(data: bytes) -> None:
    ours = parse(data)
    an = analyze(ours, {})
    text = data.decode("utf-8")
    try:
        ast = oracle.parse_dockerfile_ast(text[1:] if text.startswith("\ufeff") else text)
    except DockerfileSyntaxError as err:
        errors = [*ours.errors, *an.errors]
        assert errors, f"the oracle rejects line {err.line}: {err}"
        tail = str(err).split(": ", 1)[-1].lower()  # Docker upper-cases an unknown instruction's name
        assert any(e.line == err.line and (tail in e.message.lower() or e.message.lower() in tail)
                   for e in errors), (err, errors)
        return
    theirs = [(i.name, i.start_line, i.end_line, [h.name for h in i.heredocs]) for i in ast.instructions]
    mine = [(i.keyword.upper(), i.start, i.end, [h.name for h in i.heredocs]) for i in ours.instructions]
    assert mine == theirs
    for instr, other in zip(ours.instructions, ast.instructions, strict=True):
        if instr.name == "env":
            pairs, problem = env_assignments(instr, ours.escape)
            if problem is not None:  # `ENV` alone: BuildKit's instruction parser rejects it, after the parser
                assert other.args == [] and problem == "ENV requires at least one argument"
                continue
            assert [(a.key, a.raw) for a in pairs] == list(zip(other.args[0::3], other.args[1::3], strict=True))


@pytest.mark.parametrize("case", sorted(p.name for p in CORPUS.iterdir()))
def test_corpus_agrees_with_oracle(case: str) -> None:
    compare((CORPUS / case / "Dockerfile").read_bytes())


LINES = ["FROM a:1", "from b AS x", "ENV A=1", "ENV A=1 B=\"x y\" C=a\\ b", "env LD_LIBRARY_PATH $LD_LIBRARY_PATH:/x#",
         "ENV K='$V' L=\"${V:+:$V}\"", "RUN a \\", "  && b", "RUN a \\   #trailing", "# comment", "  # indented",
         "", "   ", "RUN <<EOF", "ENV INSIDE=1", "EOF", "COPY <<-END /f", "\tbody", "\tEND", "ARG X=1",
         "RUN [\"a\", \"<<EOF\"]", "LABEL a=b \\", "ONBUILD RUN x", "&& orphan", "RUNN typo", "# escape=`",
         "RUN dir `", "WORKDIR /w", "USER app", "ENV", "ENV ONE", "ENV A=1 B", "EXPOSE 80", "CMD [\"sh\"]",
         "\u00a0# a comment after a no-break space", "\x0bRUN after a vertical tab", "\u3000"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=14), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_generated_files_agree_with_oracle(lines: list[str], eol: str, final: bool) -> None:
    compare((eol.join(lines) + (eol if final else "")).encode())


WORD_PARTS = ["$", "{", "}", ":", "+", "-", "?", "#", "%", "'", '"', "\\", "V", "W", "x", "/", " ", "*", "${V}", "$V",
              "${V:+:${V}}", "${W:-d}", "${V#*/}", "${V%/*}"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(WORD_PARTS), min_size=1, max_size=10),
       st.sampled_from([{}, {"V": ""}, {"V": "/a/b"}, {"V": "/a/b", "W": "w w"}]),
       st.sampled_from(["\\", "`"]))
def test_expansion_agrees_with_oracle(parts: list[str], env: dict[str, str], escape: str) -> None:
    from ldfix.dockerfile.shell import ShellError, expand

    word = "".join(parts)
    lexer = oracle.ShellLex(escape, env=env, skip_unset_env=False)
    try:
        want: str | None = lexer.process_word(word)
    except ValueError:
        want = None
    try:
        got: str | None = expand(word, env, escape)
    except ShellError:
        got = None
    assert got == want, word
