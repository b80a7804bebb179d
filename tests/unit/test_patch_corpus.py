"""Golden tests for `ldfix patch` over fixtures/dockerfiles/corpus: for each Dockerfile, the findings about
the file (line, code, severity) and the unified diff of the fix must equal the checked-in expectations.

Every case is patched against the same real root filesystem (gcc-built stubs on this machine's glibc):
libcudart.so.12 sits in /opt/cuda/lib64, which no search path reaches, and libcudnn.so.9 resolves through the
cache; so a Dockerfile that does not already reach /opt/cuda/lib64 gets it added, and its own broken
LD_LIBRARY_PATH lines get repaired. `LDFIX_UPDATE_GOLDEN=1 pytest tests/unit/test_patch_corpus.py` rewrites
the expectations (review the diff before committing them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ldfix import api
from ldfix.dockerfile.job import check_exit, run
from ldfix.dockerfile.result import Options
from ldfix.image.base import ImageView
from ldfix.image.refs import parse_ref
from ldfix.report.patch import patch_dict
from tests.schema import validate_patch
from tests.stubs import compile_stub, gcc_available, host_glibc_root

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures" / "dockerfiles"
CORPUS = FIXTURES / "corpus"  # syntax and edge cases
PUBLIC = FIXTURES / "public"  # patterns seen in public ML projects' Dockerfiles (each names its source)
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").exists())
PUBLIC_CASES = sorted(p.name for p in PUBLIC.iterdir() if (p / "Dockerfile").exists())
BASE_ENV = {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
UPDATE = os.environ.get("LDFIX_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.skipif(not gcc_available(), reason="gcc is not installed")


def make_base_root(root: Path, healthy: bool = False) -> Path:
    host_glibc_root(root)
    compile_stub(root / ("usr/lib/x86_64-linux-gnu" if healthy else "opt/cuda/lib64") / "libcudart.so.12",
                 "libcudart.so.12")
    compile_stub(root / "usr/lib/x86_64-linux-gnu/libcudnn.so.9", "libcudnn.so.9")
    for d in ("usr/local/lib", "app", "tmp", "usr/local/cuda/compat", "usr/local/cuda/lib64/stubs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.conf").write_text("")
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    return root


@pytest.fixture(scope="module")
def base_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base_root(tmp_path_factory.mktemp("patch-base") / "root")


@pytest.fixture(scope="module")
def healthy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every library resolves through the cache: a public case's diff is then only its own lines' repairs."""
    return make_base_root(tmp_path_factory.mktemp("patch-healthy") / "root", healthy=True)


def opener_for(root: Path, env: dict[str, str]) -> Any:
    def opener(ref: str, no_pull: bool) -> tuple[ImageView, Any]:
        source = api.Source(parse_ref(f"dir:{root}"), dict(env), no_pull=True)
        view = api.open_view(source)
        return view, api.oracle_for(view, source.ref, static=False)

    return opener


def patch_case(case_dir: Path, root: Path, workdir: Path) -> tuple[Any, bytes]:
    meta = json.loads((case_dir / "case.json").read_text()) if (case_dir / "case.json").exists() else {}
    path = workdir / "Dockerfile"
    original = (case_dir / "Dockerfile").read_bytes()
    path.write_bytes(original)
    opts = Options(target=meta.get("target"), build_args=meta.get("build_args", {}),
                   base_env=meta.get("base_env", BASE_ENV) if meta.get("base_env_option") else None)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        result = run("Dockerfile", opts, opener_for(root, meta.get("base_env", BASE_ENV)), api)
    finally:
        os.chdir(cwd)
    return result, original


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, base_root: Path, tmp_path: Path) -> None:
    case_dir = CORPUS / case
    result, original = patch_case(case_dir, base_root, tmp_path)
    findings = "".join(f"{f.line} {f.code} {f.severity}\n" for f in result.findings if f.file)
    _compare(case_dir, result, original, findings, tmp_path)


@pytest.mark.parametrize("case", PUBLIC_CASES)
def test_public_pattern(case: str, base_root: Path, healthy_root: Path, tmp_path: Path) -> None:
    """The expected findings carry line, column and message: that each sits on the line that can act on it,
    worded for that line, is part of what was reviewed."""
    case_dir = PUBLIC / case
    meta = json.loads((case_dir / "case.json").read_text()) if (case_dir / "case.json").exists() else {}
    assert (case_dir / "Dockerfile").read_text().lstrip().startswith(("# pattern: ", "# syntax=")), \
        "each public case names the project its pattern comes from"
    result, original = patch_case(case_dir, base_root if meta.get("root") == "missing" else healthy_root, tmp_path)
    findings = "".join(f"{f.line}:{f.column or '-'} {f.code} {f.severity}: {f.message}\n"
                       for f in result.findings if f.file)
    findings += "".join(f"note: {n}\n" for n in result.notes)
    _compare(case_dir, result, original, findings, tmp_path)
    # patching the patched file changes nothing
    if result.changed:
        again_dir = tmp_path / "again"
        again_dir.mkdir()
        (again_dir / "Dockerfile").write_bytes(result.new)
        if (case_dir / "case.json").exists():
            (again_dir / "case.json").write_bytes((case_dir / "case.json").read_bytes())
        work = tmp_path / "work2"
        work.mkdir()
        again, _ = patch_case(again_dir, base_root if meta.get("root") == "missing" else healthy_root, work)
        assert not again.changed, again.diff
        # and the next run does not warn about the opposite of what the fix did
        def said(f: Any) -> tuple[str, str]:
            return f.code, re.sub(r"line \d+", "line N", f.message)
        new = {said(f) for f in again.findings if f.severity != "info"} - {said(f) for f in result.findings}
        assert not new, new


def _compare(case_dir: Path, result: Any, original: bytes, findings: str, tmp_path: Path) -> None:
    diff = result.diff or ""
    validate_patch(json.loads(json.dumps(patch_dict(result))))
    if UPDATE:
        (case_dir / "expected.findings").write_text(findings)
        if diff:
            (case_dir / "expected.diff").write_bytes(diff.encode("utf-8", "surrogateescape"))
        elif (case_dir / "expected.diff").exists():
            (case_dir / "expected.diff").unlink()
    want_diff = (case_dir / "expected.diff").read_bytes().decode() if (case_dir / "expected.diff").exists() else ""
    assert findings == (case_dir / "expected.findings").read_text()
    assert diff == want_diff
    assert (tmp_path / "Dockerfile").read_bytes() == original, "the default mode never writes"
    if any(f.code == "DOCKERFILE_SYNTAX" for f in result.findings):
        assert not result.changed and check_exit(result, "diff", "error") == 1
    if result.changed:
        assert result.verified is not False


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40 and len(PUBLIC_CASES) >= 40
