"""Bugs a new user hit: each pinned where it was fixed."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ldfix.errors import UsageError
from ldfix.image.refs import Platform, parse_platform
from tests.unit.test_cli import ldfix, make_root


def _on_a_terminal(args: list[str], cwd: Path) -> int:
    """Run ldfix with stdout on a pseudo-terminal; its exit status."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execv(sys.executable, [sys.executable, "-m", "ldfix", *args])
    while True:
        try:
            if not os.read(fd, 4096):
                break
        except OSError:
            break
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_output_on_a_terminal_writes_json_into_the_file(tmp_path: Path) -> None:
    root = make_root(str(tmp_path / "r"))
    out = tmp_path / "report.json"
    _on_a_terminal(["scan", f"dir:{root}", "--static", "--output", str(out)], tmp_path)
    report = json.loads(out.read_text())  # not empty, and json when no --format was given
    assert report["schema_version"] == 1


def test_output_table_into_a_file_has_no_colour(tmp_path: Path) -> None:
    root = make_root(str(tmp_path / "r"))
    out = tmp_path / "report.txt"
    _on_a_terminal(["scan", f"dir:{root}", "--static", "--format", "table", "--output", str(out)], tmp_path)
    text = out.read_text()
    assert "libcudart" in text and "\x1b[" not in text


def test_output_file_mode_follows_the_umask(tmp_path: Path) -> None:
    root = make_root(str(tmp_path / "r"))
    out = tmp_path / "report.json"
    old = os.umask(0o022)
    try:
        ldfix("scan", f"dir:{root}", "--static", "--output", str(out))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.mark.parametrize(("text", "want"), [("arm64", Platform("linux", "arm64")),
                                            ("linux/amd64", Platform("linux", "amd64")),
                                            ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
                                            ("x86_64", Platform("linux", "amd64"))])
def test_platform_forms(text: str, want: Platform) -> None:
    assert parse_platform(text) == want


@pytest.mark.parametrize("text", ["linux", "a/b/c/d", "linux/", "linux/ARM 64", "plan9/amd64"])
def test_bad_platform_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_platform(text)


def test_platform_without_os_applies_to_dir_images(tmp_path: Path) -> None:
    root = make_root(str(tmp_path / "r"))
    proc = ldfix("scan", f"dir:{root}", "--static", "--format", "json", "--platform", "arm64")
    assert json.loads(proc.stdout)["image"]["platform"] == "linux/arm64"
    bad = ldfix("scan", f"dir:{root}", "--static", "--platform", "a/b/c/d")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_no_output_file_when_the_scan_fails(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "ldfix", "scan", "dir:/does/not/exist", "--output", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 3 and not out.exists()
