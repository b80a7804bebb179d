"""One scan: resolve the target sonames with the loader model, ask the image's loader when possible,
classify what does not resolve (root causes §2.3), and plan a fix that is re-checked before it is shown."""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ldfix.diagnose.finding import Finding, Fix, ImageInfo, LibraryResult, Report, severity_rank
from ldfix.diagnose.index import LibraryIndex, build_index
from ldfix.image.base import ImageView, Kind
from ldfix.image.memory import MemoryFS, OverlayFS
from ldfix.image.pathwalk import Walker
from ldfix.knowledge import cuda
from ldfix.loader.elf import ElfInfo, machine_for_arch
from ldfix.loader.env import SAFE_DIR, in_dir_named, search_dirs, split_ld_library_path
from ldfix.loader.ldcache import CacheFormatError, LdCache, parse_cache
from ldfix.loader.ldconf import parse_conf, scan_dirs
from ldfix.loader.platform import LoaderPlatform, static_platform, with_loader_help
from ldfix.loader.search import LoadedObject, Resolution, Searcher
from ldfix.loader.tree import Closure, load
from ldfix.oracle.ldso import Oracle, Trace

PROBE = "/ldfix-probe.so"
CONF_FIX = "/etc/ld.so.conf.d/zz-ldfix.conf"
SYSTEM_DIR = re.compile(r"^/(usr/(local/)?)?lib(32|64|x32)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?$")


@dataclass
class Context:
    view: ImageView
    walker: Walker
    platform: LoaderPlatform
    cache: LdCache | None
    index: LibraryIndex
    oracle: Oracle | None
    notes: list[str]

    @functools.cached_property
    def would_be(self) -> LdCache:
        """The cache ldconfig would write from the image as it is (only needed when something is missing)."""
        return scan_dirs(self.walker, self.platform)[1]


def _version(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return value.split("-", 1)[0] if value else None


def _needs_loader_help(index: LibraryIndex, env: Mapping[str, str]) -> bool:
    """Only the CPU-dependent parts of the search (glibc-hwcaps subdirectories, $PLATFORM) need the image's
    `ld.so --help`; without them the static platform is exact and one container run is saved."""
    if index.hwcaps_dirs or "PLATFORM" in env.get("LD_LIBRARY_PATH", ""):
        return True
    return any("PLATFORM" in (c.info.rpath or "") + (c.info.runpath or "")
               for cands in index.by_soname.values() for c in cands)


def prepare(view: ImageView, oracle: Oracle | None, progress: Callable[[int], None] | None = None) -> Context:
    walker = Walker(view.fs)
    elf_class, machine = machine_for_arch(view.config.architecture)
    platform = static_platform(walker, elf_class, machine)
    notes = list(view.notes)
    if walker.stat(platform.interp) is None:
        musl = sorted(n for n in walker.listdir("/lib") if n.startswith("ld-musl-")) if walker.is_dir("/lib") else []
        notes.append(f"the image has no glibc dynamic loader at {platform.interp}"
                     + (f" (it has musl's /lib/{musl[0]}; ldfix models glibc's loader, so these results do not apply)"
                        if musl else "; programs in it cannot load shared libraries as modelled here"))
        oracle = None
    index = build_index(walker, progress=progress)
    if oracle is not None and _needs_loader_help(index, view.config.env):
        text = oracle.help_text()
        if text and "system search path" in text:
            platform = with_loader_help(platform, text)
    cache = None
    found = walker.stat("/etc/ld.so.cache")
    if found is not None and found[1].kind is Kind.FILE:
        try:
            cache = parse_cache(walker.read("/etc/ld.so.cache", 0, found[1].size))
        except (CacheFormatError, OSError) as err:
            notes.append(f"/etc/ld.so.cache is ignored by the loader: {err}")
    else:
        notes.append("the image has no /etc/ld.so.cache: only search paths and default directories apply")
    for path, why in index.unreadable[:20]:
        notes.append(f"{path}: {why}")
    return Context(view, walker, platform, cache, index, oracle, notes)


def _targets(ctx: Context, libs: list[str]) -> list[str]:
    k = cuda()
    out = list(dict.fromkeys(libs))
    found = sorted(s for s in ctx.index.sonames() if k.is_cuda_family(s) and not k.is_runtime_provided(s))
    for s in found:
        if s not in out:
            out.append(s)
    if (found or any(k.is_cuda_family(s) for s in libs)) and "libcuda.so.1" not in out:
        out.append("libcuda.so.1")
    return out


def _simulate(ctx: Context, targets: list[str], env: Mapping[str, str], cache: LdCache | None) -> Closure:
    searcher = Searcher(ctx.walker, ctx.platform, env, ctx.view.config.working_dir, cache)
    info = ElfInfo(ctx.platform.elf_class, True, ctx.platform.machine, 3, needed=tuple(targets), has_dynamic=True)
    return load(searcher, PROBE, info)


def _describe_tried(res: Resolution) -> list[str]:
    lines = []
    for a in res.tried:
        if a.outcome.value == "missing" and "glibc-hwcaps" in a.path:
            continue
        lines.append(f"{a.step.value}: {a.path} ({a.outcome.value}{': ' + a.detail if a.detail else ''})")
    return lines


def _top_target(obj: LoadedObject | None) -> LoadedObject | None:
    while obj is not None and obj.loader is not None and not obj.loader.is_main:
        obj = obj.loader
    return obj


def scan(view: ImageView, libs: list[str], oracle: Oracle | None = None, explicit: bool = False,
         fail_on: str = "error", progress: Callable[[int], None] | None = None,
         env_override: Mapping[str, str] | None = None, ctx: Context | None = None) -> Report:
    """Scan `view` with its own env (or `env_override`, e.g. the env a Dockerfile gives its image). Pass the
    `ctx` of an earlier scan of the same view to skip re-indexing it."""
    ctx = ctx or prepare(view, oracle, progress)
    env = dict(env_override if env_override is not None else view.config.env)
    targets = _targets(ctx, libs)
    pending = _ask_loader(ctx, targets, env)  # the image's loader runs while the model works
    closure = _simulate(ctx, targets, env, ctx.cache)
    k = cuda()
    findings: list[Finding] = []
    libraries: list[LibraryResult] = []

    for name in targets:
        res = closure.first(name)
        assert res is not None or closure.fatal is not None
        cands = [c.realpath for c in ctx.index.candidates(name)]
        if res is None:
            libraries.append(LibraryResult(name, "unresolved", None, None, cands,
                                           error=closure.fatal.error if closure.fatal else None))
            continue
        runtime = k.is_runtime_provided(name)
        status = "resolved" if res.found else "runtime-provided" if runtime else "unresolved"
        lib = LibraryResult(name, status, res.path, res.step.value if res.step else None, cands,
                            requester=None, realpath=res.realpath, tried=_describe_tried(res), error=res.error)
        libraries.append(lib)
        if runtime:
            if res.found and res.realpath and in_dir_named(res.realpath, "compat"):
                findings.append(Finding("COMPAT", "error", f"{name} resolves to a forward-compatibility copy "
                                        f"{res.path}, which would shadow the host driver", name, [res.realpath],
                                        _describe_tried(res), "remove the compat directory from search paths"))
            elif res.found and res.realpath and in_dir_named(res.realpath, "stubs"):
                findings.append(Finding("STUB", "error", f"{name} resolves to a link-time stub {res.path}", name,
                                        [res.realpath], _describe_tried(res), "remove the stubs directory from "
                                        "run-time search paths"))
            elif not res.found:
                findings.append(Finding("NO_DRIVER", "info", f"{name} is provided by the NVIDIA container runtime "
                                        "at run time (docker run --gpus all); it is not expected in the image", name,
                                        [], [], "run with --gpus all, --runtime=nvidia or a CDI device"))
            continue
        if res.found:
            continue
        findings.append(_classify(ctx, name, res))

    # dependencies of resolved targets, each resolved from the library that needs it
    for res in closure.missing:
        if res.requester == PROBE:
            continue
        req = next((o for o in closure.objects if o.path == res.requester), None)
        top = _top_target(req)
        if top is None or k.is_runtime_provided(res.name):
            continue
        inner = _classify(ctx, res.name, res)
        chain = f"{top.name} -> {req.name if req else '?'} -> {res.name}" if req is not top else \
            f"{top.name} -> {res.name}"
        findings.append(Finding("TRANSITIVE", "error", f"{top.name} resolves but its dependency {res.name} does not "
                                f"({chain}); {inner.code}: {inner.message}", top.name, inner.paths,
                                _describe_tried(res), inner.fix))
        for lib in libraries:
            if lib.soname == top.name:
                lib.error = f"dependency {res.name} does not resolve"
    if closure.fatal is not None:
        findings.append(Finding("PATH_MISSING", "error", f"the loader stops: {closure.fatal.error}",
                                closure.fatal.name, [closure.fatal.realpath or ""], _describe_tried(closure.fatal),
                                "remove or replace the broken file"))
    findings.extend(_path_findings(ctx, env))
    findings.extend(_shadowed(ctx, closure, targets))
    info = ImageInfo(view.ref, view.image_id, view.config.platform, env, _version(env, "CUDA_VERSION"),
                     _version(env, "NV_CUDNN_VERSION") or view.config.labels.get("com.nvidia.cudnn.version"),
                     view.config.working_dir,
                     ".".join(map(str, ctx.platform.glibc)) if ctx.platform.glibc else None, ctx.platform.source)
    report = Report(info, libraries, findings, None, list(ctx.notes), fail_on)
    _verify(ctx, report, pending)
    report.fix = plan_fix(ctx, report, targets, env, explicit, fail_on)
    return report


def _classify(ctx: Context, name: str, res: Resolution) -> Finding:
    cands = ctx.index.candidates(name)
    tried = _describe_tried(res)
    good = [c for c in cands if c.info.elf_class == ctx.platform.elf_class and c.info.machine == ctx.platform.machine]
    if cands and not good:
        what = ", ".join(f"{c.realpath} ({c.info.elf_class}-bit {c.info.machine_name})" for c in cands)
        return Finding("WRONG_ARCH", "error", f"{name} exists only for another architecture: {what}", name,
                       [c.realpath for c in cands], tried, "use the image for the right platform (--platform) "
                       "or install the libraries for its architecture; no path change helps")
    if good:
        in_new_cache = list(ctx.would_be.paths_for(name))
        if ctx.cache is not None and in_new_cache and not ctx.cache.paths_for(name):
            return Finding("STALE_CACHE", "error", f"{name} is in a directory ld.so.conf configures "
                           f"({posixpath.dirname(in_new_cache[0])}) but /etc/ld.so.cache does not list it: "
                           "ldconfig was not run after it was added", name, [c.realpath for c in good], tried,
                           "RUN ldconfig after the step that added it (as root)")
        if ctx.cache is None and in_new_cache:
            return Finding("STALE_CACHE", "error", f"{name} is in a directory ld.so.conf configures but the image "
                           "has no usable /etc/ld.so.cache", name, [c.realpath for c in good], tried,
                           "RUN ldconfig (as root)")
        dirs = sorted({posixpath.dirname(c.realpath) for c in good})
        return Finding("PATH_MISSING", "error", f"{name} exists at {', '.join(dirs)} but no search path reaches it",
                       name, [c.realpath for c in good], tried,
                       f"add {', '.join(dirs)} to LD_LIBRARY_PATH")
    base, _, version = name.partition(".so")
    if version == "":
        versioned = sorted(s for s in ctx.index.sonames() if s.startswith(base + ".so."))
        if versioned:
            return Finding("NO_DEV_SYMLINK", "warning", f"{name} (unversioned) is wanted; only {', '.join(versioned)} "
                           "exist", name, [c.realpath for s in versioned for c in ctx.index.candidates(s)], tried,
                           f"RUN ln -s {versioned[-1]} <its directory>/{name} (same major, same directory), or install "
                           "the -dev package")
    others = sorted(s for s in ctx.index.sonames() if s.startswith(base + ".so.") and s != name)
    if others:
        return Finding("WRONG_MAJOR", "error", f"{name} is not in the image; another major is: {', '.join(others)}"
                       + _release_context(ctx, name),
                       name, [c.realpath for s in others for c in ctx.index.candidates(s)], tried,
                       "use the framework build for the image's CUDA/cuDNN or install the wanted major side by "
                       "side; never symlink one major to another")
    return Finding("LIB_ABSENT", "error", f"no file in the image has the SONAME {name}", name, [], tried,
                   "install the library for the image's CUDA major, or use a base tag that ships it")


def _release_context(ctx: Context, name: str) -> str:
    """Which CUDA (or cuDNN) release ships `name`, and what this image's CUDA calls that library."""
    k = cuda()
    out = ""
    shipped = k.releases_for(name)
    if shipped:
        out += f" ({name} belongs to {shipped}"
        version = ctx.view.config.env.get("CUDA_VERSION")
        here = k.soname_in_release(version, name) if version else None
        if here and here != name:
            out += f"; this image's CUDA {version} provides {here}"
        out += ")"
    return out


def _path_findings(ctx: Context, env: Mapping[str, str]) -> list[Finding]:
    out: list[Finding] = []
    k = cuda()
    value = env.get("LD_LIBRARY_PATH")
    elements = split_ld_library_path(value)
    if elements:
        for raw in elements:
            problem = None
            if raw == "":
                problem = (f"an empty entry in LD_LIBRARY_PATH {value!r} searches the working directory "
                           f"({ctx.view.config.working_dir})")
            elif re.search(r"[#'\"\s]", raw):
                problem = f"LD_LIBRARY_PATH entry {raw!r} contains {_junk(raw)}, which becomes part of the path"
            elif "$" in raw and not re.search(r"\$(\{?)(ORIGIN|LIB|PLATFORM)", raw):
                problem = f"LD_LIBRARY_PATH entry {raw!r} contains a literal '$' (a single-quoted ENV value?)"
            elif not raw.startswith("/") and "$" not in raw:
                problem = f"LD_LIBRARY_PATH entry {raw!r} is relative: it depends on the working directory"
            elif raw.startswith("/") and raw.rstrip("/") not in k.runtime_mount_dirs:
                st = ctx.walker.stat(raw)
                if st is None:
                    problem = f"LD_LIBRARY_PATH entry {raw!r} does not exist in the image"
                elif st[1].kind is not Kind.DIR:
                    problem = f"LD_LIBRARY_PATH entry {raw!r} is a file, not a directory"
            if problem:
                out.append(Finding("LDPATH_BAD", "warning", problem, None, [raw], [f"LD_LIBRARY_PATH={value}"],
                                   "rewrite LD_LIBRARY_PATH with absolute directories and the "
                                   "${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}} guard"))
            for word, code in (("compat", "COMPAT"), ("stubs", "STUB")):
                if in_dir_named(raw, word):
                    out.append(Finding(code, "warning" if code == "COMPAT" else "error",
                                       f"{raw} ({word} directory) is on LD_LIBRARY_PATH", None, [raw],
                                       [f"LD_LIBRARY_PATH={value}"], f"remove {raw} from LD_LIBRARY_PATH"))
    for d in parse_conf(ctx.walker):
        for word, code in (("compat", "COMPAT"), ("stubs", "STUB")):
            if d.path.endswith("/" + word):
                out.append(Finding(code, "warning", f"{d.path} ({word} directory) is configured in {d.source}:{d.line}",
                                   None, [d.path], [f"{d.source}:{d.line}"], f"remove {d.source}"))
    return out


def _junk(raw: str) -> str:
    for ch, label in (("#", "'#'"), ("'", "a quote"), ('"', "a quote")):
        if ch in raw:
            return label
    return "whitespace"


def _shadowed(ctx: Context, closure: Closure, targets: list[str]) -> list[Finding]:
    """A loaded library whose own RPATH/RUNPATH names a directory holding one of its dependencies, while the
    process binds that dependency to another copy: loaded earlier from elsewhere, or found first on
    LD_LIBRARY_PATH (typically /usr/local/cuda/lib64 beating a wheel's RUNPATH $ORIGIN)."""
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for req in closure.objects[1:]:
        tags = req.runpath if req.runpath is not None else req.rpath
        if not tags:
            continue
        dirs = [e.path for e in search_dirs(tags.split(":"), req.origin, ctx.platform.lib_token, None) if e.path]
        for name in req.info.needed:
            bound = next((o for o in closure.objects if name in o.names or o.info.soname == name), None)
            if bound is None or (req.path, name) in seen:
                continue
            intended = next((p for d in dirs if ctx.walker.stat(p := posixpath.join(d, name)) is not None), None)
            found = ctx.walker.stat(intended) if intended else None
            if intended is None or found is None or found[0] == bound.realpath:
                continue
            seen.add((req.path, name))
            how = bound.resolution.step.value if bound.resolution and bound.resolution.step else "loaded first"
            out.append(Finding("SHADOWED", "warning", f"{req.name} expects {name} from {posixpath.dirname(intended)} "
                               f"(its {'RUNPATH' if req.runpath is not None else 'RPATH'}) but the process uses "
                               f"{bound.path} ({how})", name, [bound.realpath, found[0]],
                               _describe_tried(bound.resolution) if bound.resolution else [],
                               "remove the duplicate or put the intended directory first"))
    return out


def _ask_loader(ctx: Context, targets: list[str], env: Mapping[str, str]) -> Future[Trace] | None:
    if ctx.oracle is None:
        return None
    oracle = ctx.oracle
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ldfix-loader")
    try:
        return pool.submit(oracle.trace, list(targets), dict(env), ctx.view.config.working_dir)
    finally:
        pool.shutdown(wait=False)


def _verify(ctx: Context, report: Report, pending: Future[Trace] | None) -> None:
    """Compare the model with the image's own loader for every target; disagreements are ldfix bugs."""
    if pending is None:
        return
    try:
        trace = pending.result()
    except Exception as err:  # a runner failure must not lose the static report
        report.notes.append(f"the image's loader could not be asked: {err}")
        return
    real = trace.paths()
    for lib in report.libraries:
        if trace.fatal and lib.soname not in real:
            lib.verified = None
            continue
        lib.loader_path = real.get(lib.soname)
        agree = lib.loader_path == lib.path
        lib.verified = agree
        if not agree:
            report.findings.append(Finding(
                "PATH_MISSING" if lib.path is None else "SHADOWED", "error",
                f"ldfix's model disagrees with the image's loader for {lib.soname}: model {lib.path}, loader "
                f"{lib.loader_path} (this is a bug in ldfix; please report it)", lib.soname,
                [p for p in (lib.path, lib.loader_path) if p], []))
    if trace.fatal:
        report.notes.append(f"the image's loader stopped: {trace.fatal}")


def _overlay_check(ctx: Context, report: Report, targets: list[str], env: Mapping[str, str], line: str,
                   before: Mapping[str, str | None]) -> bool | None:
    """Run `line` in a throwaway overlay build of the image and ask its loader; None when that cannot run."""
    overlay = getattr(ctx.oracle, "trace_with_overlay", None)
    if not callable(overlay):
        return None
    try:
        trace = overlay([line], targets, env, ctx.view.config.working_dir)
    except Exception as err:
        report.notes.append(f"the fix could not be checked in an overlay build: {err}")
        return None
    return _trace_ok(ctx, report, trace, before)


def _trace_ok(ctx: Context, report: Report, trace: Trace, before: Mapping[str, str | None]) -> bool:
    """What the image's loader said with a fix applied: it stopped nowhere, found every target, and loads
    each library that resolved before from the very same file."""
    seen = trace.paths()
    ok = trace.fatal is None and all(seen.get(t) is not None for t in _needed_targets(report))
    for soname, real in before.items():  # a fix must not swap a working library for another copy
        path = seen.get(soname)
        found = ctx.walker.stat(path) if path else None
        if found is None or found[0] != real:
            ok = False
            report.notes.append(f"with the fix the image's loader takes {soname} from {path}, not {real}")
    return ok


def _conf_fix(ctx: Context, report: Report, targets: list[str], env: Mapping[str, str], dirs: list[str],
              base_image: str, before: Mapping[str, str | None]) -> Fix | None:
    """For libraries in system library directories the cache does not cover (/usr/lib64 on a Debian image):
    an ld.so.conf.d file that sorts last plus ldconfig, so every process finds them whatever its environment.
    Only when the image's ld.so.conf includes ld.so.conf.d, it has a shell, and nothing already working moves."""
    if ctx.walker.stat("/bin/sh") is None:
        return None
    if ctx.oracle is not None and not callable(getattr(ctx.oracle, "trace_with_overlay", None)):
        return None  # its loader could check the LD_LIBRARY_PATH fix but not this one: offer the checkable one
    upper = MemoryFS()
    upper.add_file(CONF_FIX, "".join(d + "\n" for d in dirs).encode())
    walker = Walker(OverlayFS(ctx.view.fs, upper))
    if not any(c.source == CONF_FIX for c in parse_conf(walker)):
        return None
    _, cache = scan_dirs(walker, ctx.platform)
    after = _simulate(ctx, targets, env, cache)
    for t in _needed_targets(report):
        r = after.first(t)
        if r is None or not r.found or (t in before and before[t] != r.realpath):
            return None
    line = f"RUN printf '%s\\n' {' '.join(dirs)} > {CONF_FIX} && ldconfig"
    checked = _overlay_check(ctx, report, targets, env, line, before)
    if checked is False:
        report.notes.append("the ld.so.conf.d fix did not resolve every target in an overlay build; not offered")
        return None
    what = "is a system library directory" if len(dirs) == 1 else "are system library directories"
    return Fix([], None, f"FROM {base_image}\n{line}\n", checked, "ldconfig",
               f"{', '.join(dirs)} {what} the cache does not cover: a conf file that sorts last plus ldconfig lets "
               "every process find the "
               "libraries, whatever its environment, and outranks nothing" + (
                   "; a throwaway overlay build with it resolved every target with the image's loader" if checked
                   else ""), [line])


def _ldconfig_line(ctx: Context) -> str | None:
    """`RUN ldconfig` in shell form when the image has /bin/sh, else exec form with its ldconfig binary."""
    if ctx.walker.stat("/bin/sh") is not None:
        return "RUN ldconfig"
    for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/sbin/ldconfig.real", "/usr/sbin/ldconfig.real"):
        found = ctx.walker.stat(path)
        if found is not None and found[1].kind is Kind.FILE:
            return f'RUN ["{path}"]'
    return None


def env_line(dirs: list[str]) -> str:
    return f'ENV LD_LIBRARY_PATH="{":".join(dirs)}${{LD_LIBRARY_PATH:+:${{LD_LIBRARY_PATH}}}}"'


def _stable_spelling(ctx: Context, directory: str) -> str:
    """The conventional name of a directory: /usr/local/cuda/lib64 for the toolkit's library dir (it survives a
    minor CUDA upgrade), /usr/lib/<triplet> rather than /lib/<triplet> on merged-/usr images."""
    here = ctx.walker.stat(directory)
    real = here[0] if here is not None else directory
    aliases = ["/usr/local/cuda/lib64", f"/usr/local/cuda/targets/{ctx.platform.cuda_target}/lib"]
    if directory.startswith("/lib"):
        aliases.append("/usr" + directory)
    for alias in aliases:
        found = ctx.walker.stat(alias)
        if found is not None and found[0] == real:
            return alias
    return directory


def plan_fix(ctx: Context, report: Report, targets: list[str], env: Mapping[str, str], explicit: bool,
             fail_on: str) -> Fix | None:
    threshold = severity_rank(fail_on) if fail_on != "none" else 99
    blocking = [f for f in report.findings if severity_rank(f.severity) >= threshold]
    fixable = [f for f in blocking if f.code in ("PATH_MISSING", "TRANSITIVE", "STALE_CACHE") and f.paths]
    if not fixable and not explicit:
        return None
    base_image = ctx.view.image_id or ctx.view.ref
    before = {lib.soname: lib.realpath for lib in report.libraries if lib.status == "resolved"}
    stale = [f for f in fixable if f.code == "STALE_CACHE"]
    if stale and len(stale) == len(fixable):
        after = _simulate(ctx, targets, env, ctx.would_be)
        ok = all((r := after.first(t)) is not None and r.found for t in _needed_targets(report))
        line = _ldconfig_line(ctx)
        checked: bool | None = None if ok else False
        if ok and line:
            checked = _overlay_check(ctx, report, targets, env, line, before)
        if line is None:
            report.notes.append("the image has neither /bin/sh nor an ldconfig binary: no RUN ldconfig fix")
            return None
        return Fix([], None, f"FROM {base_image}\n{line}\n", checked, "ldconfig",
                   "the libraries are in configured directories; rebuilding the cache is the whole fix "
                   f"(model re-check: {'all targets resolve' if ok else 'targets still missing'}"
                   + ("; a throwaway overlay build with it resolved every target with the image's loader"
                      if checked else "") + ")", [line])
    dirs: list[str] = []
    for f in fixable:
        if f.code == "STALE_CACHE":
            continue
        for p in f.paths:
            d = _stable_spelling(ctx, posixpath.dirname(p))
            if d not in dirs and SAFE_DIR.match(d):
                dirs.append(d)
    if explicit:
        for lib in report.libraries:
            if lib.status == "resolved" and lib.via == "ld_so_cache" and lib.path:
                d = _stable_spelling(ctx, posixpath.dirname(lib.path))
                if d not in dirs and SAFE_DIR.match(d):
                    dirs.append(d)
    if not dirs:
        return None
    if not explicit and all(SYSTEM_DIR.match(d) for d in dirs):
        conf = _conf_fix(ctx, report, targets, env, dirs, base_image, before)
        if conf is not None:
            return conf
    old = env.get("LD_LIBRARY_PATH")
    new_env = dict(env)
    new_env["LD_LIBRARY_PATH"] = ":".join(dirs) + (f":{old}" if old else "")
    after = _simulate(ctx, targets, new_env, ctx.cache)
    model_ok = True
    for t in _needed_targets(report):
        r = after.first(t)
        if r is None or not r.found:
            model_ok = False
        elif t in before and before[t] != r.realpath:
            model_ok = False  # the fix would change which copy an already working library loads
    if after.missing and any(m.requester != PROBE and not cuda().is_runtime_provided(m.name) for m in after.missing):
        model_ok = False
    verified: bool | None = None
    if ctx.oracle is not None:
        try:
            verified = _trace_ok(ctx, report, ctx.oracle.trace(targets, new_env, ctx.view.config.working_dir),
                                 before)
        except Exception as err:
            report.notes.append(f"the fix could not be checked with the image's loader: {err}")
    if not model_ok:
        report.notes.append("the planned LD_LIBRARY_PATH fix does not resolve every target in the model; not offered")
        return None
    line = env_line(dirs)
    if explicit:
        reason = ("--explicit: spells out the directories that resolve only through ld.so.cache today"
                  + (" and those holding missing libraries" if fixable else "")
                  + "; every library that resolved before resolves to the same file with it (model"
                  + (" and the image's loader)" if verified else ")"))
    else:
        reason = ("prepends only the directories that hold the missing libraries; the model re-resolved every "
                  "target with it" + (" and the image's loader confirmed it" if verified else ""))
    return Fix(dirs, line, f"FROM {base_image}\n{line}\n", verified, "env", reason)


def _needed_targets(report: Report) -> list[str]:
    return [lib.soname for lib in report.libraries if lib.status != "runtime-provided"]
