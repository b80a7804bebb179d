"""`ldfix patch` findings where the line can act: the physical line and column of the LD_LIBRARY_PATH key in a
continued ENV (every format), pragmas and intent comments, --base-env for an ARG-driven FROM, and the misses
(`RUN export LD_LIBRARY_PATH`, header directories)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.test_cli import ldfix

BASE = "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64"


def patch(tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, Any]]:
    (tmp_path / "Dockerfile").write_text(text)
    proc = ldfix("patch", str(tmp_path / "Dockerfile"), "--base-env", BASE, "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_a_continued_env_points_at_the_line_and_column_of_the_key(tmp_path: Path) -> None:
    text = ("FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04\n"
            "ENV FOO=1 \\\n"
            "    LD_LIBRARY_PATH=/usr/local/cuda/compat:${LD_LIBRARY_PATH} \\\n"
            "    BAR=2\n")
    _, report = patch(tmp_path, text)
    (f,) = [f for f in report["findings"] if f["code"] == "COMPAT"]
    assert (f["line"], f["column"]) == (3, 5)
    (tmp_path / "Dockerfile").write_text(text)
    sarif = json.loads(ldfix("patch", str(tmp_path / "Dockerfile"), "--base-env", BASE, "--format", "sarif").stdout)
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in sarif["runs"][0]["results"]
               if r["ruleId"] == "COMPAT"]
    assert regions == [{"startLine": 3, "startColumn": 5}]


def test_pragmas_and_intent_comments_suppress_a_finding_on_their_line(tmp_path: Path) -> None:
    line = "ENV LD_LIBRARY_PATH=/usr/local/cuda/compat:${LD_LIBRARY_PATH}\n"
    head = "FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04\n"
    for comment in ("# ldfix ignore=COMPAT\n", "# keep compat first: this image runs on old drivers\n",
                    "# hadolint ignore=DL3008\n# ldfix ignore=STUB,COMPAT\n"):
        code, report = patch(tmp_path, head + comment + line)
        assert not [f for f in report["findings"] if f["code"] == "COMPAT"], comment
        assert code == 0 and report["changed"] is False
    _, report = patch(tmp_path, head + "# ldfix ignore=STUB\n" + line)  # another code: still reported
    assert [f["code"] for f in report["findings"]] == ["COMPAT"]


def test_base_env_needs_no_image_for_an_arg_driven_from(tmp_path: Path) -> None:
    code, report = patch(tmp_path, "ARG BASE\nFROM ${BASE}\nENV LD_LIBRARY_PATH=/opt/x/lib:${LD_LIBRARY_PATH}\n")
    assert code == 0 and report["findings"] == []


def test_run_export_and_header_directories_are_ldpath_bad_warnings(tmp_path: Path) -> None:
    text = ("FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04\n"
            "ENV LD_LIBRARY_PATH=/usr/local/cuda/include:${LD_LIBRARY_PATH}\n"
            "RUN export LD_LIBRARY_PATH=/opt/x:$LD_LIBRARY_PATH && make\n")
    code, report = patch(tmp_path, text, "--fail-on", "warning")
    found = {(f["line"], f["severity"]): f["message"] for f in report["findings"] if f["code"] == "LDPATH_BAD"}
    assert "header directory" in found[(2, "warning")]
    assert "for the rest of this RUN only" in found[(3, "warning")]
    assert code == 1
