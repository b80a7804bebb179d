"""The data a scan produces. Report formatters see only these types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "error")


def severity_rank(sev: str) -> int:
    return SEVERITIES.index(sev) if sev in SEVERITIES else -1


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    soname: str | None = None
    paths: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # the search trace or facts that led here
    fix: str | None = None  # what fixes it, or why no safe fix exists
    file: str | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity}
        if self.soname is not None:
            out["soname"] = self.soname
        if self.file is not None:
            out["file"] = self.file
            out["line"] = self.line
        out["message"] = self.message
        out["paths"] = list(self.paths)
        out["evidence"] = list(self.evidence)
        out["fix"] = self.fix
        return out


@dataclass
class LibraryResult:
    soname: str
    status: str  # resolved | unresolved | runtime-provided
    path: str | None
    via: str | None
    candidates: list[str]
    verified: bool | None = None
    requester: str | None = None
    realpath: str | None = None
    tried: list[str] = field(default_factory=list)
    error: str | None = None
    loader_path: str | None = None  # what the image's own loader said, when asked

    def to_json(self) -> dict[str, Any]:
        return {"soname": self.soname, "status": self.status, "path": self.path, "via": self.via,
                "candidates": list(self.candidates), "verified": self.verified, "requester": self.requester,
                "realpath": self.realpath, "tried": list(self.tried), "error": self.error}


@dataclass
class Fix:
    ld_library_path_add: list[str]
    env_line: str | None
    dockerfile: str
    verified: bool | None
    kind: str = "env"  # env | ldconfig
    reason: str = ""
    run_lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ld_library_path_add": list(self.ld_library_path_add), "env_line": self.env_line,
                "dockerfile": self.dockerfile, "verified": self.verified, "kind": self.kind,
                "reason": self.reason, "run_lines": list(self.run_lines)}


@dataclass
class ImageInfo:
    ref: str
    id: str | None
    platform: str
    env: dict[str, str]
    cuda_version: str | None
    cudnn_version: str | None
    working_dir: str = "/"
    glibc: str | None = None
    loader: str = "static"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "id": self.id, "platform": self.platform, "env": dict(self.env),
                "cuda_version": self.cuda_version, "cudnn_version": self.cudnn_version,
                "working_dir": self.working_dir, "glibc": self.glibc, "loader": self.loader}


@dataclass
class Report:
    image: ImageInfo
    libraries: list[LibraryResult]
    findings: list[Finding]
    fix: Fix | None
    notes: list[str] = field(default_factory=list)
    fail_on: str = "error"
    frameworks: list[dict[str, Any]] = field(default_factory=list)  # --for: what each framework asks for

    def worst(self) -> str | None:
        ranked = sorted(self.findings, key=lambda f: severity_rank(f.severity))
        return ranked[-1].severity if ranked else None
