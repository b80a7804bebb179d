"""The data a scan produces: frozen records and the enums their fields take. Report formatters see only these
types. Every enum is `str`-valued, so the JSON carries the same strings it always did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ldfix.image.strenum import StrEnum

FIXABLE = ("PATH_MISSING", "TRANSITIVE", "STALE_CACHE")  # codes a search-path or cache change can fix


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class FailOn(StrEnum):
    """The lowest severity that fails a run (`--fail-on`); `none` never fails on findings."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    NONE = "none"

    def blocks(self, severity: Severity) -> bool:
        return self is not FailOn.NONE and severity.rank >= Severity(self.value).rank


class Status(StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    RUNTIME_PROVIDED = "runtime-provided"  # libcuda.so.1 and friends: the NVIDIA runtime injects them


class Via(StrEnum):
    """How the loader found a library (the search step's name, loader reference §3)."""

    RPATH = "rpath"
    LD_LIBRARY_PATH = "ld_library_path"
    RUNPATH = "runpath"
    LD_SO_CACHE = "ld_so_cache"
    DEFAULT_DIRS = "default_dirs"
    DIRECT = "direct"
    LOADED = "loaded"


class FixKind(StrEnum):
    ENV = "env"  # ENV LD_LIBRARY_PATH=...
    LDCONFIG = "ldconfig"  # RUN lines that (re)build /etc/ld.so.cache


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    soname: str | None = None
    paths: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # the search trace or facts that led here
    fix: str | None = None  # what fixes it, or why no safe fix exists
    file: str | None = None
    line: int | None = None
    framework: str | None = None
    column: int | None = None  # 1-based, where the line has more than the finding's subject

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity.value}
        if self.soname is not None:
            out["soname"] = self.soname
        if self.framework is not None:
            out["framework"] = self.framework
        if self.file is not None:
            out["file"] = self.file
            out["line"] = self.line
            if self.column is not None:
                out["column"] = self.column
        out["message"] = self.message
        out["paths"] = list(self.paths)
        out["evidence"] = list(self.evidence)
        out["fix"] = self.fix
        return out


@dataclass(frozen=True)
class LibraryResult:
    soname: str
    status: Status
    path: str | None
    via: Via | None
    candidates: tuple[str, ...]
    verified: bool | None = None
    requester: str | None = None
    realpath: str | None = None
    tried: tuple[str, ...] = ()
    error: str | None = None
    loader_path: str | None = None  # what the image's own loader said, when asked

    def to_json(self) -> dict[str, Any]:
        return {"soname": self.soname, "status": self.status.value, "path": self.path,
                "via": self.via.value if self.via else None, "candidates": list(self.candidates),
                "verified": self.verified, "requester": self.requester, "realpath": self.realpath,
                "tried": list(self.tried), "error": self.error}


@dataclass(frozen=True)
class Fix:
    """A planned fix as the report shows it, after it was re-checked (fix/verify.py)."""

    ld_library_path_add: tuple[str, ...]
    env_line: str | None
    dockerfile: str
    verified: bool | None
    kind: FixKind = FixKind.ENV
    reason: str = ""
    run_lines: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"ld_library_path_add": list(self.ld_library_path_add), "env_line": self.env_line,
                "dockerfile": self.dockerfile, "verified": self.verified, "kind": self.kind.value,
                "reason": self.reason, "run_lines": list(self.run_lines)}


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Report:
    image: ImageInfo
    libraries: tuple[LibraryResult, ...]
    findings: tuple[Finding, ...]
    fix: Fix | None
    notes: tuple[str, ...] = ()
    fail_on: FailOn = FailOn.ERROR
    frameworks: tuple[dict[str, Any], ...] = field(default=())  # --for: what each framework asks for

    def blocking(self) -> list[Finding]:
        """The findings at or above --fail-on: what makes the exit code 1."""
        return [f for f in self.findings if self.fail_on.blocks(f.severity)]
