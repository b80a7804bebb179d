"""What a scan looks at: the facts of one image, prepared once (filesystem walker, loader platform, the
ld.so.cache, the library index), and the context of one scan of it (the env, the targets, the model's
closure) that every rule checks."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ldfix.diagnose.finding import Finding
from ldfix.diagnose.index import LibraryIndex, build_index
from ldfix.image.base import ImageView, Kind
from ldfix.image.pathwalk import Walker
from ldfix.knowledge import cuda
from ldfix.loader.elf import ElfInfo, machine_for_arch
from ldfix.loader.ldcache import CacheFormatError, LdCache, parse_cache
from ldfix.loader.ldconf import scan_dirs
from ldfix.loader.platform import LoaderPlatform, static_platform, with_loader_help
from ldfix.loader.search import LoadedObject, Outcome, Resolution, Searcher
from ldfix.loader.tree import Closure, load
from ldfix.oracle.base import Oracle

PROBE = "/ldfix-probe.so"  # the model's stand-in for the program that loads the targets


@dataclass
class ImageFacts:
    view: ImageView
    walker: Walker
    platform: LoaderPlatform
    cache: LdCache | None
    index: LibraryIndex
    oracle: Oracle | None
    notes: list[str]
    opened: dict[str, Any] = field(default_factory=dict)  # path -> what opening it gives (Searcher memo)

    @functools.cached_property
    def would_be(self) -> LdCache:
        """The cache ldconfig would write from the image as it is (only needed when something is missing)."""
        return scan_dirs(self.walker, self.platform)[1]

    def simulate(self, targets: list[str] | tuple[str, ...], env: Mapping[str, str],
                 cache: LdCache | None) -> Closure:
        """The model's load of a probe that needs `targets`, with `env` and `cache`."""
        searcher = Searcher(self.walker, self.platform, env, self.view.config.working_dir, cache, self.opened)
        info = ElfInfo(self.platform.elf_class, True, self.platform.machine, 3, needed=tuple(targets),
                       has_dynamic=True)
        return load(searcher, PROBE, info)

    def simulate_from(self, requester: str, info: ElfInfo, names: tuple[str, ...], env: Mapping[str, str],
                      cache: LdCache | None) -> Closure:
        """The model's load of `names` as `requester` asks for them: a probe in the requester's directory
        with its DT_RPATH / DT_RUNPATH (so $ORIGIN is the requester's), needing `names`. This is how both a
        DT_NEEDED entry and a dlopen() from the requester search."""
        searcher = Searcher(self.walker, self.platform, env, self.view.config.working_dir, cache, self.opened)
        probe = ElfInfo(info.elf_class, info.little_endian, info.machine, 3, needed=names, rpath=info.rpath,
                        runpath=info.runpath, has_dynamic=True)
        return load(searcher, posixpath.join(posixpath.dirname(requester), ".ldfix-probe.so"), probe)

    def realpath(self, path: str | None) -> str | None:
        found = self.walker.stat(path) if path else None
        return found[0] if found else None


def _needs_loader_help(index: LibraryIndex, env: Mapping[str, str]) -> bool:
    """Only the CPU-dependent parts of the search (glibc-hwcaps subdirectories, $PLATFORM) need the image's
    `ld.so --help`; without them the static platform is exact and one container run is saved."""
    if index.hwcaps_dirs or "PLATFORM" in env.get("LD_LIBRARY_PATH", ""):
        return True
    return any("PLATFORM" in (c.info.rpath or "") + (c.info.runpath or "")
               for cands in index.by_soname.values() for c in cands)


def _no_glibc_note(walker: Walker, interp: str) -> str:
    musl = sorted(n for n in walker.listdir("/lib") if n.startswith("ld-musl-")) if walker.is_dir("/lib") else []
    return (f"the image has no glibc dynamic loader at {interp}"
            + (f" (it has musl's /lib/{musl[0]}; ldfix models glibc's loader, so these results do not apply)"
               if musl else "; programs in it cannot load shared libraries as modelled here"))


def _read_cache(walker: Walker, notes: list[str]) -> LdCache | None:
    found = walker.stat("/etc/ld.so.cache")
    if found is None or found[1].kind is not Kind.FILE:
        notes.append("the image has no /etc/ld.so.cache: only search paths and default directories apply")
        return None
    try:
        return parse_cache(walker.read("/etc/ld.so.cache", 0, found[1].size))
    except (CacheFormatError, OSError) as err:
        notes.append(f"/etc/ld.so.cache is ignored by the loader: {err}")
        return None


def _index(view: ImageView, walker: Walker, progress: Callable[[int], None] | None) -> LibraryIndex:
    """The library index, from the image's snapshot when an earlier scan kept one (image/snapshot.py)."""
    if view.snapshot_key is None:
        return build_index(walker, progress=progress)
    from ldfix.image import snapshot

    index = snapshot.load_data(view.snapshot_key, "index")
    if not isinstance(index, LibraryIndex):
        index = build_index(walker, progress=progress)
        snapshot.save_data(view.snapshot_key, "index", index)
    return index


def prepare(view: ImageView, oracle: Oracle | None, progress: Callable[[int], None] | None = None) -> ImageFacts:
    walker = Walker(view.fs)
    elf_class, machine = machine_for_arch(view.config.architecture)
    platform = static_platform(walker, elf_class, machine)
    notes = list(view.notes)
    if walker.stat(platform.interp) is None:
        notes.append(_no_glibc_note(walker, platform.interp))
        oracle = None
    index = _index(view, walker, progress)
    if oracle is not None and _needs_loader_help(index, view.config.env):
        text = oracle.help_text()
        if text and "system search path" in text:
            platform = with_loader_help(platform, text)
    cache = _read_cache(walker, notes)
    for path, why in index.unreadable[:20]:
        notes.append(f"{path}: {why}")
    return ImageFacts(view, walker, platform, cache, index, oracle, notes)


def describe_tried(res: Resolution | None, limit: int = 16) -> tuple[str, ...]:
    """The search trace of a resolution, one line per directory tried: the hwcaps and legacy platform
    subdirectories (tls/, x86_64/, ...) a directory's own try stands for are left out, and a long trace ends
    with how many more lines there were."""
    if res is None:
        return ()
    tried = {a.path for a in res.tried}
    lines = []
    for a in res.tried:
        if a.outcome is Outcome.MISSING and ("glibc-hwcaps" in a.path or _under_tried(a.path, tried)):
            continue
        lines.append(f"{a.step.value}: {a.path} ({a.outcome.value}{': ' + a.detail if a.detail else ''})")
    if len(lines) > limit:
        lines = [*lines[:limit - 1], f"... and {len(lines) - limit + 1} more"]
    return tuple(lines)


def _under_tried(path: str, tried: set[str]) -> bool:
    """Whether PATH is DIR/<subdirs>/NAME for a DIR whose DIR/NAME was tried too."""
    directory, _, name = path.rpartition("/")
    parent = directory.rpartition("/")[0]
    while parent:
        if f"{parent}/{name}" in tried:
            return True
        parent = parent.rpartition("/")[0]
    return False


def top_target(obj: LoadedObject | None) -> LoadedObject | None:
    """The target (a direct need of the probe) that pulled `obj` in."""
    while obj is not None and obj.loader is not None and not obj.loader.is_main:
        obj = obj.loader
    return obj


@dataclass(frozen=True)
class ScanContext:
    """One scan: the image facts, the env it runs with, the sonames it checks, and the model's closure."""

    facts: ImageFacts
    env: Mapping[str, str]
    targets: tuple[str, ...]
    asked: frozenset[str]  # names the user asked for (--lib, --for): what a consumer must load to work
    closure: Closure
    causes: tuple[Callable[[ScanContext, str, Resolution], Finding | None], ...] = ()  # the registry's, in order

    @property
    def walker(self) -> Walker:
        return self.facts.walker

    @property
    def index(self) -> LibraryIndex:
        return self.facts.index

    def target_resolutions(self) -> list[tuple[str, Resolution | None]]:
        return [(name, self.closure.first(name)) for name in self.targets]

    def broken_dependencies(self) -> list[tuple[LoadedObject, LoadedObject, Resolution]]:
        """(target, requester, resolution) for each dependency of a loaded target that does not resolve,
        driver libraries left out (the runtime injects them)."""
        k = cuda()
        out = []
        for res in self.closure.missing:
            if res.requester == self.closure.main.path or k.is_runtime_provided(res.name):
                continue
            req = next((o for o in self.closure.objects if o.path == res.requester), None)
            top = top_target(req)
            if req is not None and top is not None:
                out.append((top, req, res))
        return out

    def classify(self, name: str, res: Resolution) -> Finding:
        """Why `name` does not resolve: the first cause that applies (LIB_ABSENT always does)."""
        for explain in self.causes:
            found = explain(self, name, res)
            if found is not None:
                return found
        raise AssertionError("no cause explains " + name)
