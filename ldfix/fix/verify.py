"""The one re-check of a planned fix, for `scan`, `patch` and `--overlay` alike: the model first (every
target resolves, nothing that resolved before moves to another file, no dependency is left missing), then
the image's own loader (the env applied, or the RUN lines built into a throwaway overlay image)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ldfix.diagnose.context import PROBE, ScanContext
from ldfix.diagnose.finding import Fix, FixKind, Report, Status
from ldfix.fix.plan import Checkable, ConfD, Plan, PrependLdPath, RunLdconfig, UseEnv, candidates
from ldfix.knowledge import cuda
from ldfix.loader.ldcache import LdCache
from ldfix.oracle.base import Trace


@dataclass(frozen=True)
class Check:
    model_ok: bool
    loader: bool | None  # None: the image's loader could not be asked
    notes: tuple[str, ...] = ()


def needed(report: Report) -> list[str]:
    return [lib.soname for lib in report.libraries if lib.status is not Status.RUNTIME_PROVIDED]


def resolved_before(report: Report) -> dict[str, str | None]:
    return {lib.soname: lib.realpath for lib in report.libraries if lib.status is Status.RESOLVED}


def _model_ok(ctx: ScanContext, report: Report, plan: Checkable) -> bool:
    after = ctx.facts.simulate(ctx.targets, plan.env(dict(ctx.env)), plan.cache(ctx))
    before = resolved_before(report)
    for t in needed(report):
        r = after.first(t)
        if r is None or not r.found or (t in before and before[t] != r.realpath):
            return False  # still missing, or a working library would load another copy
    k = cuda()
    return not any(m.requester != PROBE and not k.is_runtime_provided(m.name) for m in after.missing)


def trace_ok(ctx: ScanContext, report: Report, trace: Trace) -> tuple[bool, list[str]]:
    """What the image's loader said with a fix applied: it stopped nowhere, found every target, and loads
    each library that resolved before from the very same file."""
    seen = trace.paths()
    ok = trace.fatal is None and all(seen.get(t) is not None for t in needed(report))
    notes = []
    for soname, real in resolved_before(report).items():
        path = seen.get(soname)
        if ctx.facts.realpath(path) != real:
            ok = False
            notes.append(f"with the fix the image's loader takes {soname} from {path}, not {real}")
    return ok, notes


def _ask_loader(ctx: ScanContext, report: Report, plan: Checkable) -> tuple[bool | None, list[str]]:
    oracle = ctx.facts.oracle
    if oracle is None:
        return None, []
    cwd = ctx.facts.view.config.working_dir
    env = plan.env(dict(ctx.env))
    try:
        if isinstance(plan, PrependLdPath | UseEnv):
            trace = oracle.trace(list(ctx.targets), env, cwd)
        elif oracle.can_overlay:
            trace = oracle.trace_with_overlay(list(plan.lines()), list(ctx.targets), env, cwd)
        else:
            return None, []
    except Exception as err:  # a runner failure leaves the fix model-checked only
        return None, [f"the fix could not be checked with the image's loader: {err}"]
    return trace_ok(ctx, report, trace)


# (env, cache) -> whether every framework loads what it needs with them (api.scan_view supplies it)
FrameworksOk = Callable[[Mapping[str, str], LdCache | None], bool]


def check(ctx: ScanContext, report: Report, plan: Checkable, frameworks_ok: FrameworksOk | None = None) -> Check:
    """Model first (the targets, then each framework from its own objects); only a plan the model accepts is
    put to the image's loader."""
    if not _model_ok(ctx, report, plan):
        return Check(False, None)
    if frameworks_ok is not None and not frameworks_ok(plan.env(dict(ctx.env)), plan.cache(ctx)):
        return Check(False, None)
    loader, notes = _ask_loader(ctx, report, plan)
    return Check(True, loader, tuple(notes))


def _reason(plan: Plan, report: Report, confirmed: bool) -> str:
    loader = "; a throwaway overlay build with it resolved every target with the image's loader"
    if isinstance(plan, RunLdconfig):
        return ("the libraries are in configured directories; rebuilding the cache is the whole fix (model "
                "re-check: all targets resolve" + (loader if confirmed else "") + ")")
    if isinstance(plan, ConfD):
        what = "is a system library directory" if len(plan.dirs) == 1 else "are system library directories"
        return (f"{', '.join(plan.dirs)} {what} the cache does not cover: a conf file that sorts last plus "
                "ldconfig lets every process find the libraries, whatever its environment, and outranks nothing"
                + (loader if confirmed else ""))
    if plan.explicit:
        fixable = any(f.code in ("PATH_MISSING", "TRANSITIVE") for f in report.blocking())
        return ("--explicit: spells out the directories that resolve only through ld.so.cache today"
                + (" and those holding missing libraries" if fixable else "")
                + "; every library that resolved before resolves to the same file with it (model"
                + (" and the image's loader)" if confirmed else ")"))
    return ("prepends only the directories that hold the missing libraries; the model re-resolved every target "
            "with it" + (" and the image's loader confirmed it" if confirmed else ""))


def as_fix(plan: Plan, base_image: str, verified: bool | None, report: Report) -> Fix:
    lines = plan.lines()
    dockerfile = f"FROM {base_image}\n" + "".join(line + "\n" for line in lines)
    if isinstance(plan, PrependLdPath):
        return Fix(plan.dirs, lines[0], dockerfile, verified, FixKind.ENV, _reason(plan, report, bool(verified)))
    return Fix((), None, dockerfile, verified, FixKind.LDCONFIG, _reason(plan, report, bool(verified)), lines)


def plan_and_verify(ctx: ScanContext, report: Report, explicit: bool, frameworks_ok: FrameworksOk | None = None
                    ) -> tuple[Fix | None, list[str]]:
    """The first plan that the model and, where it can be asked, the image's loader confirm; with notes on
    every plan that did not pass. A fix the loader refutes is never offered."""
    plans, notes = candidates(ctx, report, explicit)
    base_image = ctx.facts.view.image_id or ctx.facts.view.ref
    for plan in plans:
        result = check(ctx, report, plan, frameworks_ok)
        notes += result.notes
        label = {PrependLdPath: "LD_LIBRARY_PATH", RunLdconfig: "RUN ldconfig", ConfD: "ld.so.conf.d"}[type(plan)]
        if not result.model_ok:
            notes.append(f"the planned {label} fix does not resolve every target in the model; not offered")
            continue
        if result.loader is False:
            notes.append(f"the image's loader did not confirm the planned {label} fix; not offered")
            continue
        return as_fix(plan, base_image, result.loader, report), notes
    return None, notes


def env_for(env: Mapping[str, str], fix: Fix | None) -> dict[str, str]:
    """The env a fixed image runs with (an ENV fix prepends its directories)."""
    if fix is None or fix.kind is not FixKind.ENV:
        return dict(env)
    return PrependLdPath(fix.ld_library_path_add).env(dict(env))
