"""What each installed framework loads, resolved from the object that loads it.

For every requester of a framework (its own ELF objects, knowledge/loading.json) the model loads the
requester's CUDA DT_NEEDED names, plus the names the release dlopens from it, from a probe with the
requester's RPATH/RUNPATH in the requester's directory (so `$ORIGIN` is the requester's). cuDNN's
sub-libraries are then loaded the same way from the `libcudnn.so.N` that was bound. Libraries the
framework's Python code preloads by absolute path (JAX's plugin, CuPy) are taken from the wheel directories
first, as that code does. The image's rules then judge each of these closures: an unresolved name is
classified like a target (PATH_MISSING, WRONG_MAJOR, LIB_ABSENT, NO_DEV_SYMLINK...), and SHADOWED,
TRANSITIVE and VERSION_SKEW look at what that requester really binds. Each finding names its framework."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ldfix.diagnose.context import ScanContext
from ldfix.diagnose.finding import Finding
from ldfix.diagnose.rules import shadowed, transitive
from ldfix.diagnose.rules.version_skew import skew_findings
from ldfix.frameworks.detect import Install
from ldfix.frameworks.requesters import Loaded, cuda_major, dlopen_names, elf_of, glob, preload_paths, wheel_release
from ldfix.knowledge import cuda, release_row, wheel_for
from ldfix.loader.elf import ElfInfo
from ldfix.loader.search import LoadedObject, Resolution, SearchStep
from ldfix.loader.tree import Closure


@dataclass
class FrameworkCheck:
    install: Install
    libraries: list[Loaded]
    findings: list[Finding]
    closures: list[tuple[str, Closure]]  # (requester, the closure of its CUDA names)


def _framework_finding(f: Finding, install: Install, requester: str, info: ElfInfo | None = None) -> Finding:
    """The finding worded for the framework; with the requester's ELF facts, its search path leads the
    evidence, and a wheel library that its own RUNPATH/RPATH leaves out (while naming other nvidia wheel
    directories) is called what it is: a defect of the framework's packaging."""
    name = install.loading.framework
    message = f"{name} {install.dist.version} ({posixpath.basename(requester)}): {f.message}"
    evidence = f.evidence
    if info is not None:
        tag, value = ("DT_RUNPATH", info.runpath) if info.runpath is not None else ("DT_RPATH", info.rpath)
        distinct = list(dict.fromkeys(value.split(":"))) if value is not None else []
        shown = ":".join(distinct)
        shown = shown if len(shown) <= 600 else shown[:600] + "..."
        count = f" ({len(value.split(':'))} entries, {len(distinct)} distinct)" if value and \
            len(distinct) < len(value.split(":")) else ""
        evidence = (f"{requester} {tag}{count}: {shown}" if value is not None else
                    f"{requester} has no DT_RPATH or DT_RUNPATH", *evidence)
        if f.code == "PATH_MISSING" and value and "nvidia/" in value and f.paths and "/nvidia/" in f.paths[0]:
            wanted = posixpath.dirname(f.paths[0]).split("/nvidia/", 1)[1]
            message += (f"; its {tag} names other nvidia wheel directories but not nvidia/{wanted}, so this "
                        f"{name} release cannot find it on its own (a packaging defect of the release)")
    return replace(f, framework=name, message=message, evidence=evidence)


def _preloaded(ctx: ScanContext, install: Install, name: str) -> str | None:
    for pattern in install.loading.preload:
        for d in glob(ctx.walker, install.dist.site, pattern):
            path = posixpath.join(d, name)
            if ctx.walker.stat(path) is not None:
                return path
    return None


def _skew(install: Install, closures: list[Closure], requester: str) -> list[Finding]:
    """VERSION_SKEW over everything one framework loads, with the nvidia-* wheel versions as releases."""
    loaded: dict[str, str] = {}
    for closure in closures:
        for o in closure.objects[1:]:
            if o.realpath:
                loaded.setdefault(o.name, o.realpath)
    return [_framework_finding(f, install, requester)
            for f in skew_findings(loaded, lambda real: wheel_release(real, install.wheels))]


def _judge(ctx: ScanContext, install: Install, requester: str, closure: Closure, names: list[str], how: str,
           preloaded: Mapping[str, str], deps: bool = True, own: Closure | None = None
           ) -> tuple[list[Loaded], list[Finding]]:
    """The libraries `names` of one closure, and the findings on them; with `deps`, also what they need in
    turn and the closure-wide rules (SHADOWED, TRANSITIVE). `own`: the requester's closure without the
    framework's preloading; a preloaded library is reported as the requester's own lookup when that lands
    on the same file, and as `preload` only where the preloading decides."""
    fctx = replace(ctx, closure=closure, targets=tuple(names), asked=frozenset())
    libs, findings = [], []
    k = cuda()
    for name in names:
        cands = tuple(c.realpath for c in ctx.index.candidates(name))
        if name in preloaded:
            res = closure.first(preloaded[name]) or Resolution(name, requester, SearchStep.DIRECT, preloaded[name],
                                                                ctx.facts.realpath(preloaded[name]), None)
            mine = own.first(name) if own is not None else None
            if mine is not None and mine.found and mine.realpath == res.realpath:
                libs.append(Loaded(name, requester, how, mine, cands))
            else:
                libs.append(Loaded(name, posixpath.join(install.location, "__init__.py"), "preload", res, cands))
            continue
        bound = closure.first(name)
        libs.append(Loaded(name, requester, how, bound, cands))
        if bound is not None and not bound.found and not k.is_runtime_provided(name):
            found = fctx.classify(name, bound)
            major = cuda_major(install, requester)
            wheel = wheel_for(name, major)
            extra = install.loading.extra_for(install.dist.version, major)
            if found.code in ("LIB_ABSENT", "WRONG_MAJOR") and wheel:
                found = replace(found, fix=f"pip install {wheel} (the wheel that ships {name} for CUDA {major})"
                                + (f", or {extra} for all of them" if extra else "")
                                + f", or a {install.loading.framework} release built for the CUDA the image has")
            findings.append(_framework_finding(found, install, requester, closure.main.info))
    if not deps:
        return libs, findings
    listed = set(names)
    for path in (n for n in closure.main.info.needed if "/" in n):  # the framework's own preloads
        name = posixpath.basename(path)
        pre = closure.first(path)
        if name not in listed and pre is not None and k.is_cuda_family(name):
            listed.add(name)
            libs.append(Loaded(name, posixpath.join(install.location, "__init__.py"), "preload", pre,
                               tuple(c.realpath for c in ctx.index.candidates(name))))
    for res in closure.resolutions:  # what the requester's CUDA libraries need in turn (cuBLAS -> cuBLASLt)
        if res.requester != closure.main.path and res.step is not SearchStep.LOADED and k.is_cuda_family(res.name) \
                and res.name not in listed:
            listed.add(res.name)
            libs.append(Loaded(res.name, res.requester or requester, "needed", res,
                               tuple(c.realpath for c in ctx.index.candidates(res.name))))
    for f in shadowed.check(fctx) + transitive.check(fctx):
        findings.append(_framework_finding(f, install, requester))
    return libs, findings


def check_install(ctx: ScanContext, install: Install, env: Mapping[str, str]) -> FrameworkCheck:
    k = cuda()
    walker, cache = ctx.walker, ctx.facts.cache
    how = install.loading
    row = release_row(how.framework, install.dist.version.split("+")[0])
    result = FrameworkCheck(install, [], [], [])
    seen: set[tuple[str, str]] = set()
    requesters = [p for pattern in how.requesters for p in glob(walker, install.dist.site, pattern)]
    preload_files = preload_paths(walker, install)  # what its Python code loads first
    for requester in requesters:
        info = elf_of(walker, requester)
        if info is None:
            continue
        needed = [n for n in info.needed if k.is_cuda_family(n)]
        dlopens = [n for n in dict.fromkeys(dlopen_names(install, requester, row.sonames if row else ()))
                   if n not in needed]
        names = [n for n in needed + dlopens if (requester, n) not in seen]
        if not names:
            continue
        seen.update((requester, n) for n in names)
        preloaded = {posixpath.basename(p): p for p in preload_files}
        preloaded.update({n: p for n in names if n not in preloaded and (p := _preloaded(ctx, install, n) or "")})
        preloaded = {n: p for n, p in preloaded.items() if n in names}
        # loaded by absolute path first (loaded objects then answer their sonames), as the Python code does
        first = tuple(dict.fromkeys([*preload_files, *preloaded.values()]))
        closure = ctx.facts.simulate_from(requester, info, (*first, *names), env, cache)
        own = ctx.facts.simulate_from(requester, info, tuple(names), env, cache) if first else closure
        result.closures.append((requester, closure))
        for subset, kind in ((needed, "needed"), (dlopens, "dlopen")):
            libs, found = _judge(ctx, install, requester, closure, [n for n in names if n in subset], kind,
                                 preloaded, deps=kind == "needed" or not needed, own=own)
            result.libraries += libs
            result.findings += found
        result.findings += _cudnn_sublibs(ctx, install, closure, env, result)
        result.libraries += _nvrtc_builtins(ctx, closure)
        result.findings += _skew(install, [c for _, c in result.closures], requester)
    result.findings = list({(f.code, f.soname, f.message): f for f in result.findings}.values())
    result.libraries = list({(lib.soname, lib.requester, lib.how): lib for lib in result.libraries}.values())
    return result


def _soname(o: LoadedObject) -> str:
    """The name an object answers to: its SONAME, else the file name it was loaded under."""
    return o.info.soname or posixpath.basename(o.name)


def _nvrtc_builtins(ctx: ScanContext, closure: Closure) -> list[Loaded]:
    """NVRTC dlopens libnvrtc-builtins.so.MAJOR.MINOR from its own directory when it compiles."""
    out = []
    for o in closure.objects[1:]:
        m = re.fullmatch(r"libnvrtc\.so\.(\d+)", _soname(o))
        if m is None or not o.realpath:
            continue
        d = posixpath.dirname(o.realpath)
        for name in sorted(ctx.walker.listdir(d)):
            if fnmatch.fnmatchcase(name, f"libnvrtc-builtins.so.{m.group(1)}*"):
                path = posixpath.join(d, name)
                res = Resolution(name, o.realpath, SearchStep.DIRECT, path, ctx.facts.realpath(path), None)
                out.append(Loaded(name, o.realpath, "dlopen", res, ()))
                break
    return out


def _cudnn_sublibs(ctx: ScanContext, install: Install, closure: Closure, env: Mapping[str, str],
                   result: FrameworkCheck) -> list[Finding]:
    """cuDNN 8/9 dlopen their sub-libraries from libcudnn.so.N itself: resolve them from there."""
    core = next((o for o in closure.objects[1:] if re.fullmatch(r"libcudnn\.so\.\d+", _soname(o))), None)
    if core is None or any(req == core.realpath for req, _ in result.closures):
        return []
    major = int(_soname(core).rsplit(".", 1)[1])
    subs = [s for s in cuda().cudnn_sublibs.get(major, ()) if s != core.name]
    if not subs:
        return []
    sub_closure = ctx.facts.simulate_from(core.realpath, core.info, tuple(subs), env, ctx.facts.cache)
    result.closures.append((core.realpath, sub_closure))
    libs, found = _judge(ctx, install, core.realpath, sub_closure, subs, "dlopen", {})
    result.libraries += libs
    return found


def entry(check: FrameworkCheck) -> dict[str, Any]:
    """The contract's `frameworks[]` entry for an installed framework."""
    inst = check.install
    row = release_row(inst.loading.framework, inst.dist.version.split("+")[0])
    built_for = inst.built_for_cuda or (row.cuda if row else None)
    out: dict[str, Any] = {"framework": inst.loading.framework, "version": inst.dist.version, "source": "installed",
                           "location": inst.location, "built_for_cuda": built_for,
                           "libraries": [lib.to_json() for lib in check.libraries],
                           "wheels": [{"name": w.name, "version": w.version} for w in inst.wheels]}
    if row is None:
        out["note"] = (f"ldfix's data does not know {inst.loading.framework} {inst.dist.version}: its needs were "
                       "read from its binaries only")
    if not check.libraries:
        out["note"] = "no CUDA library is loaded by this install's own objects (a CPU build, or a partial install)"
    return out


def owned_sonames(index_candidates: Mapping[str, list[Any]], installs: list[Install]) -> frozenset[str]:
    """Sonames every copy of which lies in a site-packages that holds a framework: each is checked from the
    framework objects that load it, not from an empty program (which no Python process is)."""
    sites = tuple(i.dist.site + "/" for i in installs)
    if not sites:
        return frozenset()
    return frozenset(name for name, cands in index_candidates.items()
                     if cands and all(c.realpath.startswith(sites) for c in cands))


def check_all(ctx: ScanContext, installs: list[Install], env: Mapping[str, str]
              ) -> tuple[list[dict[str, Any]], list[Finding]]:
    """The `frameworks` entries and the framework findings of one scan."""
    checks = [check_install(ctx, i, env) for i in installs]
    return [entry(c) for c in checks], [f for c in checks for f in c.findings]
