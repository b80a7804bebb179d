"""Where the loader finds one bare name, from one requester (elf/dl-load.c `_dl_map_object`).

Order: the RPATH chain (only when the requester has no RUNPATH), LD_LIBRARY_PATH, the requester's own
RUNPATH, /etc/ld.so.cache, the default directories. In every searched directory the active
glibc-hwcaps subdirectories, then the legacy tls/platform subdirectories (glibc < 2.37), come first.
Every attempt is recorded so a miss can list each path tried, in order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from ldfix.image.base import Kind
from ldfix.image.pathwalk import Walker
from ldfix.loader.elf import ElfInfo, Probe, Verdict, probe
from ldfix.loader.env import PathEntry, absolute, opened_path, search_dirs, split_dt_path, split_ld_library_path
from ldfix.loader.ldcache import LdCache
from ldfix.loader.platform import LoaderPlatform


class SearchStep(enum.Enum):
    RPATH = "rpath"
    LD_LIBRARY_PATH = "ld_library_path"
    RUNPATH = "runpath"
    LD_SO_CACHE = "ld_so_cache"
    DEFAULT_DIRS = "default_dirs"
    DIRECT = "direct"  # the name contains '/', opened as a path
    LOADED = "loaded"  # an object already loaded under that name or SONAME


class Outcome(enum.Enum):
    FOUND = "found"
    MISSING = "missing"
    WRONG_CLASS = "wrong-class"
    WRONG_MACHINE = "wrong-machine"
    FATAL = "fatal"
    SKIPPED = "skipped"  # e.g. a cache hit in a system dir for a DF_1_NODEFLIB requester


@dataclass(frozen=True)
class Attempt:
    step: SearchStep
    path: str  # the string the loader opens
    outcome: Outcome
    detail: str | None = None
    source: str | None = None  # whose RPATH/RUNPATH, or the cache


@dataclass(frozen=True)
class Resolution:
    name: str
    requester: str | None
    step: SearchStep | None
    path: str | None  # the path the loader opens (not the realpath)
    realpath: str | None
    info: ElfInfo | None
    tried: tuple[Attempt, ...] = ()
    error: str | None = None
    fatal: bool = False

    @property
    def found(self) -> bool:
        return self.path is not None and not self.fatal


@dataclass
class LoadedObject:
    """One object in the simulated process (a link map)."""

    name: str  # the name it was first requested as
    path: str  # l_name: the path it was opened under
    realpath: str
    info: ElfInfo
    loader: LoadedObject | None
    origin: str
    is_main: bool = False
    names: set[str] = field(default_factory=set)
    resolution: Resolution | None = None

    @property
    def rpath(self) -> str | None:
        return self.info.effective_rpath

    @property
    def runpath(self) -> str | None:
        return self.info.runpath


class Searcher:
    """Resolution of bare names over an image, for one process environment."""

    def __init__(self, walker: Walker, platform: LoaderPlatform, env: Mapping[str, str], cwd: str,
                 cache: LdCache | None, memo: dict[str, tuple[Outcome, str | None, str | None, ElfInfo | None]]
                 | None = None) -> None:
        self.walker = walker
        # what opening a path gives depends on the files alone: Searchers of one image may share it
        self._opened = memo if memo is not None else {}
        self.platform = platform
        self.cwd = cwd or "/"
        self.cache = cache
        self.env = env
        self._probes: dict[str, Probe] = {}
        self.ld_library_path: list[PathEntry] = []
        self.main: LoadedObject | None = None
        self._subdirs = tuple(f"glibc-hwcaps/{s}" for s in platform.hwcaps) + platform.legacy_subdirs

    def set_main(self, main: LoadedObject) -> None:
        self.main = main
        elements = split_ld_library_path(self.env.get("LD_LIBRARY_PATH"))
        self.ld_library_path = self._dirs(elements, main.origin) if elements is not None else []

    def _dirs(self, elements: list[str], origin: str | None) -> list[PathEntry]:
        return search_dirs(elements, origin, self.platform.lib_token, self.platform.platform_token)

    # -- files -------------------------------------------------------------------------------------
    def probe_path(self, opened: str) -> tuple[Outcome, str | None, str | None, ElfInfo | None]:
        """(outcome, realpath, error, info) of opening one path as the loader would."""
        abspath = absolute(opened, self.cwd)
        known = self._opened.get(abspath)
        if known is None:
            known = self._opened[abspath] = self._open(abspath)
        return known

    def _open(self, abspath: str) -> tuple[Outcome, str | None, str | None, ElfInfo | None]:
        found = self.walker.stat(abspath)
        if found is None:
            return Outcome.MISSING, None, None, None
        real, st = found
        if st.kind is Kind.DIR:
            return Outcome.FATAL, real, "cannot read file data: Is a directory", None
        if st.kind is not Kind.FILE:
            return Outcome.MISSING, real, None, None
        result = self._probes.get(real)
        if result is None:
            try:
                result = probe(self.walker.reader(real), self.platform.elf_class, self.platform.machine)
            except OSError as err:
                result = Probe(Verdict.FATAL, error=f"cannot open shared object file: {err.strerror or err}")
            self._probes[real] = result
        if result.verdict is Verdict.OK:
            return Outcome.FOUND, real, None, result.info
        if result.verdict is Verdict.WRONG_CLASS:
            return Outcome.WRONG_CLASS, real, result.error, None
        if result.verdict is Verdict.WRONG_MACHINE:
            return Outcome.WRONG_MACHINE, real, None, None
        return Outcome.FATAL, real, result.error, None

    def _search_dir_list(self, name: str, dirs: list[PathEntry], step: SearchStep, source: str | None,
                         tried: list[Attempt]) -> Resolution | None:
        for entry in dirs:
            if entry.path is None:
                continue
            for sub in self._subdirs:
                base = entry.path + ("" if entry.path.endswith("/") or entry.path == "" else "/") + sub
                res = self._try(name, opened_path(base, name), step, source, tried)
                if res is not None:
                    return res
            res = self._try(name, opened_path(entry.path, name), step, source, tried)
            if res is not None:
                return res
        return None

    def _try(self, name: str, opened: str, step: SearchStep, source: str | None, tried: list[Attempt]
             ) -> Resolution | None:
        outcome, real, error, info = self.probe_path(opened)
        tried.append(Attempt(step, opened, outcome, error, source))
        if outcome is Outcome.FOUND:
            return Resolution(name, None, step, opened, real, info, tuple(tried))
        if outcome is Outcome.FATAL:
            return Resolution(name, None, step, opened, real, None, tuple(tried), f"{opened}: {error}", True)
        return None

    # -- one lookup --------------------------------------------------------------------------------
    def resolve(self, name: str, requester: LoadedObject | None) -> Resolution:
        req_path = requester.path if requester else None
        tried: list[Attempt] = []
        if "/" in name:
            return self._with_requester(self._direct(name, requester, tried), req_path)
        res = self._search(name, requester, tried)
        if res is None:
            wrong_class = next((a.detail for a in tried if a.outcome is Outcome.WRONG_CLASS), None)
            error = (f"{name}: {wrong_class}" if wrong_class else
                     f"{name}: cannot open shared object file: No such file or directory")
            res = Resolution(name, None, None, None, None, None, tuple(tried), error)
        return self._with_requester(res, req_path)

    @staticmethod
    def _with_requester(res: Resolution, req: str | None) -> Resolution:
        return Resolution(res.name, req, res.step, res.path, res.realpath, res.info, res.tried, res.error, res.fatal)

    def _direct(self, name: str, requester: LoadedObject | None, tried: list[Attempt]) -> Resolution:
        from ldfix.loader.env import expand

        origin = requester.origin if requester else (self.main.origin if self.main else None)
        expanded, note = expand(name, origin, self.platform.lib_token, self.platform.platform_token)
        if expanded is None:
            return Resolution(name, None, None, None, None, None, (), f"{name}: {note}")
        res = self._try(name, expanded, SearchStep.DIRECT, None, tried)
        if res is not None:
            return res
        return Resolution(name, None, None, None, None, None, tuple(tried),
                          f"{expanded}: cannot open shared object file: No such file or directory")

    def _search(self, name: str, requester: LoadedObject | None, tried: list[Attempt]) -> Resolution | None:
        main = self.main
        if requester is None or requester.runpath is None:
            did_main = False
            obj = requester
            while obj is not None:
                if obj.rpath is not None:
                    dirs = self._dirs(split_dt_path(obj.rpath) or [], obj.origin)
                    res = self._search_dir_list(name, dirs, SearchStep.RPATH, obj.path, tried)
                    if res is not None:
                        return res
                    did_main |= obj is main
                obj = obj.loader
            if not did_main and main is not None and main.rpath is not None and main.is_main:
                dirs = self._dirs(split_dt_path(main.rpath) or [], main.origin)
                res = self._search_dir_list(name, dirs, SearchStep.RPATH, main.path, tried)
                if res is not None:
                    return res
        if self.ld_library_path:
            res = self._search_dir_list(name, self.ld_library_path, SearchStep.LD_LIBRARY_PATH, None, tried)
            if res is not None:
                return res
        if requester is not None and requester.runpath is not None:
            dirs = self._dirs(split_dt_path(requester.runpath) or [], requester.origin)
            res = self._search_dir_list(name, dirs, SearchStep.RUNPATH, requester.path, tried)
            if res is not None:
                return res
        flag_owner = requester or main
        nodeflib = flag_owner is not None and flag_owner.info.nodeflib
        if self.cache is not None:
            entry = self.cache.lookup(name, self.platform.cache_flags, self.platform.hwcaps,
                                      self.platform.legacy_hwcap_mask)
            if entry is not None:
                if nodeflib and self._in_system_dir(entry.path):
                    tried.append(Attempt(SearchStep.LD_SO_CACHE, entry.path, Outcome.SKIPPED,
                                         "DF_1_NODEFLIB requester ignores system directories", "/etc/ld.so.cache"))
                else:
                    res = self._try(name, entry.path, SearchStep.LD_SO_CACHE, "/etc/ld.so.cache", tried)
                    if res is not None:
                        return res
        if not nodeflib:
            dirs = [PathEntry(d, d) for d in self.platform.default_dirs]
            res = self._search_dir_list(name, dirs, SearchStep.DEFAULT_DIRS, None, tried)
            if res is not None:
                return res
        return None

    def _in_system_dir(self, path: str) -> bool:
        """glibc compares a cached path with each system directory as a prefix (with its slash), so a
        subdirectory of a system directory counts too."""
        return any(path.startswith(d.rstrip("/") + "/") for d in self.platform.default_dirs)


def origin_of(opened: str, cwd: str) -> str:
    """$ORIGIN of an object: the directory of the path it was opened under (symlinks not resolved)."""
    full = absolute(opened, cwd)
    return full[: full.rindex("/")] or "/"

