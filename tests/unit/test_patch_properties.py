"""Properties of the patcher on generated Dockerfiles: the result parses, every line outside the
LD_LIBRARY_PATH instructions it repairs is kept byte for byte and in order, and patching the patched file
changes nothing."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldfix.dockerfile.lint import lint_steps
from ldfix.dockerfile.model import analyze, evaluate
from ldfix.dockerfile.parser import parse, split_lines
from ldfix.dockerfile.patch import Plan, apply, plan
from ldfix.dockerfile.result import Options
from ldfix.dockerfile.settle import Relint, settle
from ldfix.loader.env import split_ld_library_path

FRAGMENTS = [
    ["ENV A=1"], ["env B=2"], ["RUN echo x"], ["RUN a \\", "  # inner comment", "  && b"], ["LABEL x=1 \\", "  y=2"],
    ["# a comment"], [""], ["# hadolint ignore=DL3008", "RUN apt-get install -y x"],
    ["RUN <<EOF", "ENV LD_LIBRARY_PATH=/in/heredoc", "EOF"],
    ["ENV LD_LIBRARY_PATH $LD_LIBRARY_PATH:/usr/local/lib#"],
    ['ENV LD_LIBRARY_PATH="/x${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"'], ["ENV LD_LIBRARY_PATH=:/y"],
    ["ENV LD_LIBRARY_PATH=/usr/local/cuda/compat:$LD_LIBRARY_PATH"], ["ENV C=3 LD_LIBRARY_PATH='$LD_LIBRARY_PATH:/z' D=4"],
    ["ENV E=5 \\", "    LD_LIBRARY_PATH=/w# \\", "    F=6"], ["WORKDIR /w"], ["USER app"], ["ARG V=1"], ["COPY a b"],
    ["ONBUILD ENV LD_LIBRARY_PATH=/o"], ["FROM base AS next"], ["FROM img:2"], ['CMD ["python3"]'],
    ["ENV LD_LIBRARY_PATH ${LD_LIBRARY_PATH}:/c d;/g#h"], ['ENV LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-/def}:lib"'],
    ["env C=2 LD_LIBRARY_PATH=/x/stubs:$OTHER/lib:/a/b/ A=1"], ["ENV LD_LIBRARY_PATH='${LD_LIBRARY_PATH}'::/e\\ f"],
    ["ARG CUDA_HOME=/usr/local/cuda"], ["ARG WITH_OFI=1", "ARG AWS_LIB_DIR=/opt/amazon/lib"],
    ["ENV LD_LIBRARY_PATH=${CUDA_HOME}/lib64:\\", "/usr/local/cuda/compat:\\", "$LD_LIBRARY_PATH"],
    ['ENV LD_LIBRARY_PATH="${WITH_OFI:+$AWS_LIB_DIR:}$LD_LIBRARY_PATH"'],
    ["ENV PATH=/x:$PATH \\", "    LD_LIBRARY_PATH=${CUDA_HOME}/compat:${LD_LIBRARY_PATH} \\", "    Z=1"],
    ["ENV LD_LIBRARY_PATH=/opt/a:${CUDA_HOME}/include:$LD_LIBRARY_PATH#"],
    ["ENV LD_LIBRARY_PATH=/usr/local/cuda/lib64:\\", "    # the toolkit first", "/usr/local/cuda/lib64/stubs"],
]
REF = re.compile(r"\$\{[^}]*\}?\}|\$\w+")


def _refs(text: str) -> Counter[str]:
    """Variable references other than LD_LIBRARY_PATH's own (which the guard may rewrite)."""
    return Counter(r for r in REF.findall(text) if "LD_LIBRARY_PATH" not in r)


def _continued(lines: list[bytes]) -> int:
    return sum(1 for line in lines if line.rstrip(b"\r\n").endswith(b"\\"))


@st.composite
def dockerfiles(draw: st.DrawFn) -> bytes:
    lines: list[str] = []
    if draw(st.booleans()):
        lines += ["# syntax=docker/dockerfile:1", "# check=skip=all"]
    lines.append(draw(st.sampled_from(["FROM img:1 AS base", "from img:1 as base"])))
    for frag in draw(st.lists(st.sampled_from(FRAGMENTS), max_size=12)):
        lines += frag
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()


def _patch(data: bytes, base_env: dict[str, str], want: str) -> tuple[bytes, Plan, list[tuple[int, int]]]:
    df = parse(data)
    an = analyze(df, {})
    stage = an.target(None)
    assert stage is not None and not df.errors and not an.errors
    env = evaluate(an, stage, base_env, {})
    lint = lint_steps(env, "Dockerfile", env.working_dir, df.escape, df)
    have = split_ld_library_path(env.env.get("LD_LIBRARY_PATH")) or []
    add = [] if want in have else [want]
    p, new = settle(an, stage, lint, add, [], Relint(Options(), base_env, "/", "", "Dockerfile"), "", [])
    # a later round may repair a line the first uncovered (see settle): every LD_LIBRARY_PATH ENV may change
    keyed = {sf.step.assignment.instr.start for sf in lint}
    spans = [(i.start, i.end) for i in df.instructions if i.start in keyed and p.repaired]
    return new, p, spans


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfiles(), st.sampled_from([{}, {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64"}]))
def test_patch_keeps_lines_and_is_idempotent(data: bytes, base_env: dict[str, str]) -> None:
    new, p, spans = _patch(data, base_env, "/opt/cuda/lib64")
    df2 = parse(new)
    assert not df2.errors and not analyze(df2, {}).errors
    old_lines = split_lines(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    new_lines = split_lines(new[3:] if new.startswith(b"\xef\xbb\xbf") else new)
    assert new.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    kept = [line for n, line in enumerate(old_lines, 1) if not any(a <= n <= b for a, b in spans)]
    it = iter(new_lines)
    for line in kept:  # a subsequence, byte for byte (a last line may gain the file's line ending)
        assert any(candidate == line or candidate.rstrip(b"\r\n") == line for candidate in it), line
    again, p2, _ = _patch(new, base_env, "/opt/cuda/lib64")
    assert again == new and not p2.repaired
    # every variable reference outside the dropped entries is still written (nothing baked in)
    assert not (_refs(data.decode()) - sum((_refs(d) for d in p.dropped), Counter()) - _refs(new.decode()))
    # continuation lines are never joined: a continuation goes only with a line that goes
    inserted = sum(len(e.lines) for e in p.edits if not e.replace)
    assert _continued(new_lines) >= _continued(old_lines) - max(0, len(old_lines) + inserted - len(new_lines))


def test_run_ldconfig_goes_after_the_last_run_and_as_root() -> None:
    data = b"FROM img:1\nUSER app\nENV A=1\nRUN make install\n# hadolint ignore=DL3025\nCMD python3\n"
    df = parse(data)
    an = analyze(df, {})
    stage = an.target(None)
    assert stage is not None
    p = plan(an, stage, [], [], ["RUN ldconfig"])
    assert apply(df, p.edits) == (b"FROM img:1\nUSER app\nENV A=1\nRUN make install\nUSER root\nRUN ldconfig\n"
                                  b"USER app\n# hadolint ignore=DL3025\nCMD python3\n")
    lower = parse(data.lower())
    an2 = analyze(lower, {})
    assert an2.target(None) is not None
    out = apply(lower, plan(an2, an2.target(None), [], [], ["RUN ldconfig"]).edits)  # type: ignore[arg-type]
    assert b"\nuser root\nrun ldconfig\nuser app\n" in out
