"""One scan: resolve the target sonames with the loader model while the image's own loader is asked, run
every rule of the registry over the result, and report each library with how it resolves or why not.
Planning and re-checking a fix is fix/'s job; the composition root (api.py) puts the two together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ldfix.diagnose.context import ImageFacts, ScanContext, describe_tried
from ldfix.diagnose.finding import FailOn, Finding, ImageInfo, LibraryResult, Report, Status, Via
from ldfix.diagnose.rules import REGISTRY
from ldfix.knowledge import cuda
from ldfix.oracle.base import Trace

if TYPE_CHECKING:
    from concurrent.futures import Future


@dataclass(frozen=True)
class ScanOptions:
    libs: tuple[str, ...] = ()
    fail_on: FailOn = FailOn.ERROR
    explicit: bool = False
    frameworks: tuple[dict[str, Any], ...] = ()  # --for: what each framework asks for (knowledge)


def targets_for(facts: ImageFacts, libs: list[str], owned: frozenset[str] = frozenset()) -> list[str]:
    """The names asked for, then every CUDA-family soname in the image (less those only frameworks' wheels
    hold), then libcuda.so.1 when CUDA is in play."""
    k = cuda()
    out = list(dict.fromkeys(libs))
    found = sorted(s for s in facts.index.sonames() if k.is_cuda_family(s) and not k.is_runtime_provided(s)
                   and s not in owned)
    out += [s for s in found if s not in out]
    if (found or owned or any(k.is_cuda_family(s) for s in libs)) and "libcuda.so.1" not in out:
        out.append("libcuda.so.1")
    return out


def ask_loader(facts: ImageFacts, targets: list[str], env: Mapping[str, str]) -> Future[Trace] | None:
    """Start the image's loader on the targets in a thread, so it runs while the model works."""
    if facts.oracle is None:
        return None
    from concurrent.futures import ThreadPoolExecutor  # a static scan never imports it

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ldfix-loader")
    try:
        return pool.submit(facts.oracle.trace, list(targets), dict(env), facts.view.config.working_dir)
    finally:
        pool.shutdown(wait=False)


def _library(ctx: ScanContext, name: str) -> LibraryResult:
    res = ctx.closure.first(name)
    cands = tuple(c.realpath for c in ctx.index.candidates(name))
    if res is None:
        fatal = ctx.closure.fatal
        return LibraryResult(name, Status.UNRESOLVED, None, None, cands, error=fatal.error if fatal else None)
    status = (Status.RESOLVED if res.found else
              Status.RUNTIME_PROVIDED if cuda().is_runtime_provided(name) else Status.UNRESOLVED)
    return LibraryResult(name, status, res.path, Via(res.step.value) if res.step else None, cands,
                         realpath=res.realpath, tried=describe_tried(res), error=res.error)


def _with_dependency_errors(ctx: ScanContext, libraries: list[LibraryResult]) -> list[LibraryResult]:
    """A target that resolves while a dependency of it does not says which (the last one found wins)."""
    broken = {top.name: res.name for top, _, res in ctx.broken_dependencies()}
    return [replace(lib, error=f"dependency {broken[lib.soname]} does not resolve") if lib.soname in broken else lib
            for lib in libraries]


def compare_with_loader(libraries: list[LibraryResult], pending: Future[Trace] | None
                        ) -> tuple[list[LibraryResult], list[str]]:
    """Each library as the image's own loader saw it: verified true when it agrees with the model, false when
    not. A disagreement is a defect of the model, said as such in a note; it is never a finding about the image."""
    if pending is None:
        return libraries, []
    try:
        trace = pending.result()
    except Exception as err:  # a runner failure must not lose the static report
        return libraries, [f"the image's loader could not be asked: {err}"]
    real = trace.paths()
    out, notes = [], []
    for lib in libraries:
        if trace.fatal and lib.soname not in real:
            out.append(replace(lib, verified=None))
            continue
        seen = real.get(lib.soname)
        out.append(replace(lib, loader_path=seen, verified=seen == lib.path))
        if seen != lib.path:
            notes.append(f"ldfix's model disagrees with the image's loader for {lib.soname}: model {lib.path}, "
                         f"loader {seen} (a defect of ldfix; please report it); trust the loader")
    if trace.fatal:
        notes.append(f"the image's loader stopped: {trace.fatal}")
    return out, notes


def _version(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return value.split("-", 1)[0] if value else None


def image_info(facts: ImageFacts, env: Mapping[str, str]) -> ImageInfo:
    view, platform = facts.view, facts.platform
    return ImageInfo(view.ref, view.image_id, view.config.platform, dict(env), _version(env, "CUDA_VERSION"),
                     _version(env, "NV_CUDNN_VERSION") or view.config.labels.get("com.nvidia.cudnn.version"),
                     view.config.working_dir, ".".join(map(str, platform.glibc)) if platform.glibc else None,
                     platform.source)


def context(facts: ImageFacts, targets: list[str], env: Mapping[str, str], asked: frozenset[str]) -> ScanContext:
    closure = facts.simulate(targets, env, facts.cache)
    causes = tuple(r.explain for r in REGISTRY if r.explain is not None)
    return ScanContext(facts, dict(env), tuple(targets), asked, closure, causes)


def diagnose(facts: ImageFacts, libs: list[str], env: Mapping[str, str], fail_on: FailOn = FailOn.ERROR,
             frameworks: tuple[dict[str, Any], ...] = (), owned: frozenset[str] = frozenset()
             ) -> tuple[Report, ScanContext]:
    """The report of one scan, without its fix, and the context the fix planner works from. `owned`: sonames
    that frameworks load from their own wheels, checked from them and not as targets of an empty program."""
    targets = targets_for(facts, libs, owned)
    pending = ask_loader(facts, targets, env)  # the image's loader runs while the model works
    ctx = context(facts, targets, env, frozenset(libs))
    findings: list[Finding] = []
    for name, res in ctx.target_resolutions():
        if res is not None and not res.found and not cuda().is_runtime_provided(name):
            findings.append(ctx.classify(name, res))
    for rule in REGISTRY:
        if rule.check is not None:
            findings += rule.check(ctx)
    order = {r.code: i for i, r in enumerate(REGISTRY)}
    findings.sort(key=lambda f: order[f.code])  # registry order; within a code, target order
    libraries = _with_dependency_errors(ctx, [_library(ctx, name) for name in targets])
    libraries, notes = compare_with_loader(libraries, pending)
    report = Report(image_info(facts, env), tuple(libraries), tuple(findings), None,
                    tuple(facts.notes + notes), fail_on, frameworks)
    return report, ctx
