"""What `ldfix patch` decided for one Dockerfile: the options it ran with and its result. A data module, so
the renderers (report/patch.py) and the command line read it without importing the job."""

from __future__ import annotations

from dataclasses import dataclass, field

from ldfix.diagnose.finding import FailOn, Finding, FixKind, Report
from ldfix.dockerfile.patch import Plan, unified_diff


@dataclass
class Options:
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    base_env: dict[str, str] | None = None  # --base-env: the base image's env without asking a daemon
    image: str | None = None  # --image REF: scan this built image instead of the base
    build: bool = False
    no_pull: bool = False
    fail_on: FailOn = FailOn.ERROR
    libs: list[str] = field(default_factory=list)


@dataclass
class PatchResult:
    path: str
    target_stage: str | None
    base_image: str | None
    findings: list[Finding]
    scan: Report | None
    old: bytes
    new: bytes
    plan: Plan | None
    verified: bool | None
    scanned_ref: str | None = None
    notes: list[str] = field(default_factory=list)
    after: list[Finding] = field(default_factory=list)  # what would be reported for the patched file
    from_line: int | None = None  # the FROM line of the external base the target stage builds on
    fail_on: FailOn = FailOn.ERROR

    @property
    def changed(self) -> bool:
        return self.new != self.old

    @property
    def diff(self) -> str | None:
        return unified_diff(self.path, self.old, self.new) if self.changed else None

    def unfixed(self, fail_on: FailOn) -> list[Finding]:
        """Findings at or above fail_on that would remain after the change (all of them when nothing changes)."""
        return [f for f in self.after if fail_on.blocks(f.severity)]

    def unchanged_words(self, fail_on: FailOn | None = None) -> str:
        """What to say when nothing is edited: "no change needed" only when nothing at or above --fail-on
        stays; else which findings stay and why no edit of this file removes them."""
        left = self.unfixed(fail_on or self.fail_on)
        if not left:
            return "no change needed"
        where = "; ".join(f"{f.code} {'line ' + str(f.line) if f.file else f.soname or 'image'}" for f in left[:6])
        more = f" and {len(left) - 6} more" if len(left) > 6 else ""
        return (f"not changed, {len(left)} finding(s) at or above --fail-on remain ({where}{more}): no edit of "
                "this file removes them; each finding's fix says what to do")

    def overlay(self, image: str) -> str:
        lines = [f"FROM {image}"]
        if self.plan and self.plan.env_line:
            lines.append(self.plan.env_line)
        if self.scan and self.scan.fix and self.scan.fix.kind is FixKind.LDCONFIG:
            lines += self.scan.fix.run_lines
        return "\n".join(lines) + "\n"
