"""Fix planning: which change would make the blocking findings go away, as frozen variants. Nothing here
says a fix works; fix/verify.py re-checks every plan (the model, then the image's own loader) before a fix
is shown."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import FIXABLE, FixKind, Report, Status, Via
from ldfix.diagnose.rules.ldpath_bad import GUARD
from ldfix.image.base import Kind
from ldfix.image.memory import MemoryFS, OverlayFS
from ldfix.image.pathwalk import Walker
from ldfix.loader.env import SAFE_DIR
from ldfix.loader.ldcache import LdCache
from ldfix.loader.ldconf import parse_conf, scan_dirs

CONF_FIX = "/etc/ld.so.conf.d/zz-ldfix.conf"
SYSTEM_DIR = re.compile(r"^/(usr/(local/)?)?lib(32|64|x32)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?$")


def env_line(dirs: list[str] | tuple[str, ...]) -> str:
    return f'ENV LD_LIBRARY_PATH="{":".join(dirs)}{GUARD}"'


@dataclass(frozen=True)
class PrependLdPath:
    """ENV LD_LIBRARY_PATH with `dirs` in front of the inherited value."""

    dirs: tuple[str, ...]
    explicit: bool = False  # --explicit: also spells out directories reached through ld.so.cache
    kind = FixKind.ENV

    def env(self, env: dict[str, str]) -> dict[str, str]:
        old = env.get("LD_LIBRARY_PATH")
        return {**env, "LD_LIBRARY_PATH": ":".join(self.dirs) + (f":{old}" if old else "")}

    def lines(self) -> tuple[str, ...]:
        return (env_line(self.dirs),)

    def cache(self, ctx: ScanContext) -> LdCache | None:
        return ctx.facts.cache


@dataclass(frozen=True)
class RunLdconfig:
    """`RUN ldconfig`: the libraries are in configured directories; rebuilding the cache is the whole fix."""

    line: str
    kind = FixKind.LDCONFIG

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return env

    def lines(self) -> tuple[str, ...]:
        return (self.line,)

    def cache(self, ctx: ScanContext) -> LdCache | None:
        return ctx.facts.would_be


@dataclass(frozen=True)
class ConfD:
    """An ld.so.conf.d file that sorts last plus ldconfig, for system library directories the cache does not
    cover (/usr/lib64 on a Debian image): every process finds them whatever its environment."""

    dirs: tuple[str, ...]
    kind = FixKind.LDCONFIG

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return env

    def lines(self) -> tuple[str, ...]:
        return (f"RUN printf '%s\\n' {' '.join(self.dirs)} > {CONF_FIX} && ldconfig",)

    def overlay(self, ctx: ScanContext) -> Walker:
        upper = MemoryFS()
        upper.add_file(CONF_FIX, "".join(d + "\n" for d in self.dirs).encode())
        return Walker(OverlayFS(ctx.facts.view.fs, upper))

    def cache(self, ctx: ScanContext) -> LdCache | None:
        return scan_dirs(self.overlay(ctx), ctx.facts.platform)[1]

    def applies(self, ctx: ScanContext) -> bool:
        """The image's ld.so.conf includes ld.so.conf.d, so the new file is read at all."""
        return any(c.source == CONF_FIX for c in parse_conf(self.overlay(ctx)))


@dataclass(frozen=True)
class UseEnv:
    """Not a plan but a claim to check the same way: the whole env a patched Dockerfile gives its image."""

    values: tuple[tuple[str, str], ...]
    kind = FixKind.ENV

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return dict(self.values)

    def lines(self) -> tuple[str, ...]:
        return ()

    def cache(self, ctx: ScanContext) -> LdCache | None:
        return ctx.facts.cache


Plan = PrependLdPath | RunLdconfig | ConfD
Checkable = Plan | UseEnv


def stable_spelling(ctx: ScanContext, directory: str) -> str:
    """The conventional name of a directory: /usr/local/cuda/lib64 for the toolkit's library dir (it survives a
    minor CUDA upgrade), /usr/lib/<triplet> rather than /lib/<triplet> on merged-/usr images."""
    real = ctx.facts.realpath(directory) or directory
    aliases = ["/usr/local/cuda/lib64", f"/usr/local/cuda/targets/{ctx.facts.platform.cuda_target}/lib"]
    if directory.startswith("/lib"):
        aliases.append("/usr" + directory)
    return next((alias for alias in aliases if ctx.facts.realpath(alias) == real), directory)


def ldconfig_line(ctx: ScanContext) -> str | None:
    """`RUN ldconfig` in shell form when the image has /bin/sh, else exec form with its ldconfig binary."""
    if ctx.walker.stat("/bin/sh") is not None:
        return "RUN ldconfig"
    for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/sbin/ldconfig.real", "/usr/sbin/ldconfig.real"):
        found = ctx.walker.stat(path)
        if found is not None and found[1].kind is Kind.FILE:
            return f'RUN ["{path}"]'
    return None


def _dirs(ctx: ScanContext, report: Report, explicit: bool) -> list[str]:
    dirs: list[str] = []
    paths = [p for f in report.blocking() if f.code in FIXABLE and f.code != "STALE_CACHE" for p in f.paths]
    if explicit:
        paths += [lib.path for lib in report.libraries
                  if lib.status is Status.RESOLVED and lib.via is Via.LD_SO_CACHE and lib.path]
    for p in paths:
        d = stable_spelling(ctx, posixpath.dirname(p))
        if d not in dirs and SAFE_DIR.match(d):
            dirs.append(d)
    return dirs


def candidates(ctx: ScanContext, report: Report, explicit: bool) -> tuple[list[Plan], list[str]]:
    """The plans worth verifying, best first, and notes on why none could be made."""
    fixable = [f for f in report.blocking() if f.code in FIXABLE and f.paths]
    if not fixable and not explicit:
        return [], []
    if fixable and all(f.code == "STALE_CACHE" for f in fixable):
        line = ldconfig_line(ctx)
        if line is None:
            return [], ["the image has neither /bin/sh nor an ldconfig binary: no RUN ldconfig fix"]
        return [RunLdconfig(line)], []
    dirs = _dirs(ctx, report, explicit)
    if not dirs:
        return [], []
    plans: list[Plan] = []
    if not explicit and all(SYSTEM_DIR.match(d) for d in dirs) and ctx.walker.stat("/bin/sh") is not None:
        conf = ConfD(tuple(dirs))
        oracle = ctx.facts.oracle
        if conf.applies(ctx) and (oracle is None or oracle.can_overlay):
            plans.append(conf)
    plans.append(PrependLdPath(tuple(dirs), explicit))
    return plans, []
