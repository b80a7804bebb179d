"""`ldfix patch` from the command line without a Docker daemon (--base-env): bad input, the seed story's
Dockerfile, output modes, and that the file is never damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.schema import validate_patch

FIXTURES = Path(__file__).resolve().parent.parent.parent / "fixtures" / "dockerfiles"
BASE = ["--base-env", "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64"]


def ldfix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ldfix", "patch", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "NO_COLOR": "1"})


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ldfix: error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_missing_file_directory_and_binary_are_exit_3(tmp_path: Path) -> None:
    assert "does not exist" in one_line_error(proc := ldfix(str(tmp_path / "nope")))
    assert proc.returncode == 3
    assert "is a directory" in one_line_error(proc := ldfix(str(tmp_path)))
    assert proc.returncode == 3
    (tmp_path / "bin").write_bytes(b"\x7fELF\x00\x01\x02")
    assert "binary" in one_line_error(proc := ldfix(str(tmp_path / "bin")))
    assert proc.returncode == 3


def test_seed_dockerfile_findings_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    shutil.copy(FIXTURES / "seed" / "Dockerfile", path)
    before = path.read_bytes()
    proc = ldfix(str(path), "--write", "--format", "json", *BASE)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    validate_patch(report)
    got = {(f["line"], f["code"], f["severity"]) for f in report["findings"]}
    assert (7, "DOCKERFILE_SYNTAX", "error") in got  # the continuation broken by '#remove unneeded'
    assert (8, "DOCKERFILE_SYNTAX", "error") in got  # '&&' is then an unknown instruction, as Docker says
    assert (11, "LDPATH_BAD", "error") in got and (11, "LDPATH_BAD", "warning") in got
    messages = " ".join(f["message"] for f in report["findings"])
    assert "'/usr/lib/x86_64-linux-gnu#' does not exist: '#' is part of the value" in messages
    assert "legacy 'ENV LD_LIBRARY_PATH value' form" in messages
    assert report["changed"] is False and report["diff"] is None
    assert path.read_bytes() == before


def test_unterminated_heredoc_is_syntax_exit_1_untouched(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a:1\nRUN <<EOF\necho\n")
    proc = ldfix(str(path), "--write", *BASE)
    assert proc.returncode == 1 and "unterminated heredoc" in proc.stderr
    assert path.read_bytes() == b"FROM a:1\nRUN <<EOF\necho\n"


def test_repair_offline_then_check_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a:1\r\nENV LD_LIBRARY_PATH $LD_LIBRARY_PATH:/usr/local/cuda/lib64#\r\nRUN true\r\n")
    path.chmod(0o640)
    check = ldfix(str(path), "--check", *BASE)
    assert check.returncode == 1 and "needs a change" in check.stderr
    diff = ldfix(str(path), *BASE)
    assert diff.stdout.startswith(f"--- a/{path}\n+++ b/{path}\n") and diff.returncode == 1
    assert ldfix(str(path), "--write", *BASE).returncode == 0
    # the base sets LD_LIBRARY_PATH, so the self-reference stays as written (no guard needed)
    assert path.read_bytes() == b'FROM a:1\r\nENV LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/cuda/lib64\r\nRUN true\r\n'
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert ldfix(str(path), "--check", *BASE).returncode == 0
    assert ldfix(str(path), *BASE).stdout == ""  # idempotent


def test_read_only_file_with_write_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a:1\nENV LD_LIBRARY_PATH=/x#\n")
    path.chmod(0o444)
    proc = ldfix(str(path), "--write", *BASE)
    assert proc.returncode == 3 and "read-only" in proc.stderr.splitlines()[-1]
    assert path.read_bytes() == b"FROM a:1\nENV LD_LIBRARY_PATH=/x#\n"


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a:1 AS one\n")
    assert ldfix(str(path), "--write", "--check", *BASE).returncode == 2
    assert ldfix(str(path), "--overlay", str(tmp_path / "o"), *BASE).returncode == 2
    proc = ldfix(str(path), "--target", "two", *BASE)
    assert proc.returncode == 2 and 'target stage "two" could not be found' in proc.stderr


def test_env_line_sarif_and_markdown(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"from a:1\nenv LD_LIBRARY_PATH=/usr/local/lib:$LD_LIBRARY_PATH#\n")
    assert ldfix(str(path), "--env-line", *BASE).stdout == \
        "ENV LD_LIBRARY_PATH=/usr/local/lib:$LD_LIBRARY_PATH\n"  # the stray '#' cut, the rest as written
    sarif = json.loads(ldfix(str(path), "--format", "sarif", *BASE).stdout)
    result = sarif["runs"][0]["results"][0]
    assert result["ruleId"] == "LDPATH_BAD"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    md = ldfix(str(path), "--format", "markdown", *BASE).stdout
    assert "```diff" in md and "| line 2 | LDPATH_BAD | error |" in md


def test_several_files_as_pre_commit_passes_them(tmp_path: Path) -> None:
    bad, good = tmp_path / "a.Dockerfile", tmp_path / "b.Dockerfile"
    bad.write_bytes(b"FROM a:1\nENV LD_LIBRARY_PATH=/x#\n")
    good.write_bytes(b"FROM a:1\nENV A=1\n")
    assert ldfix("--check", str(good), str(good), *BASE).returncode == 0
    proc = ldfix("--check", str(bad), str(good), *BASE)
    assert proc.returncode == 1 and f"{bad}: needs a change" in proc.stderr and f"{good}: no change needed" in proc.stderr
    assert ldfix("--format", "json", str(bad), str(good), *BASE).returncode == 2
    hooks = (Path(__file__).resolve().parent.parent.parent / ".pre-commit-hooks.yaml").read_text()
    assert "id: ldfix-check" in hooks and "entry: ldfix patch --check" in hooks and "types: [dockerfile]" in hooks


def test_base_image_from_a_missing_build_arg_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"ARG BASE\nFROM ${BASE}\nENV A=1\n")
    proc = ldfix(str(path))
    assert proc.returncode == 2 and "empty after ARG substitution" in proc.stderr and "--build-arg" in proc.stderr
