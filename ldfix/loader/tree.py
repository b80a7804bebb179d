"""The dependency closure of one program, in glibc's order (elf/dl-deps.c: breadth first; an object
already loaded under a name or SONAME is reused; the first provider of a soname wins for the process)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ldfix.loader.elf import ElfInfo
from ldfix.loader.search import LoadedObject, Outcome, Resolution, Searcher, SearchStep, origin_of


@dataclass
class Closure:
    main: LoadedObject
    objects: list[LoadedObject] = field(default_factory=list)  # load order, main first
    resolutions: list[Resolution] = field(default_factory=list)  # every request, in order
    missing: list[Resolution] = field(default_factory=list)
    fatal: Resolution | None = None
    trace: list[tuple[str, str | None]] = field(default_factory=list)  # as trace mode prints, in order

    def first(self, name: str) -> Resolution | None:
        return next((r for r in self.resolutions if r.name == name), None)

    def listing(self) -> list[tuple[str, str | None]]:
        """What `LD_TRACE_LOADED_OBJECTS=1 ld.so` prints, in order: (first name, path or None = not found).
        A miss is listed at each request, as glibc makes a new placeholder each time."""
        return list(self.trace)


def _rtld(searcher: Searcher) -> LoadedObject | None:
    """The dynamic loader itself is loaded before anything else (under its PT_INTERP path and its SONAME), so
    libc's DT_NEEDED on `ld-linux-x86-64.so.2` is satisfied without a search (elf/rtld.c)."""
    interp = searcher.platform.interp
    outcome, real, _, info = searcher.probe_path(interp)
    if outcome is not Outcome.FOUND or info is None or real is None:
        return None
    names = {interp, *([info.soname] if info.soname else [])}
    return LoadedObject(interp, interp, real, info, None, origin_of(interp, searcher.cwd), names=names)


def load(searcher: Searcher, main_path: str, main_info: ElfInfo, preload: tuple[str, ...] = (),
         max_objects: int = 5000) -> Closure:
    """Simulate loading `main_path` (as `ld.so main_path` does) and everything it needs."""
    main = LoadedObject(main_path, main_path, main_path, main_info, None, origin_of(main_path, searcher.cwd),
                        is_main=True, names={main_path})
    searcher.set_main(main)
    closure = Closure(main, [main])
    by_real: dict[str, LoadedObject] = {main.realpath: main}
    queue: deque[LoadedObject] = deque([main])
    rtld = _rtld(searcher)
    known = [rtld] if rtld is not None else []

    def request(name: str, requester: LoadedObject) -> LoadedObject | None:
        for obj in [*closure.objects, *known]:
            if name in obj.names or obj.info.soname == name:
                res = Resolution(name, requester.path, SearchStep.LOADED, obj.path, obj.realpath, obj.info)
                closure.resolutions.append(res)
                return None
        res = searcher.resolve(name, requester)
        closure.resolutions.append(res)
        if res.fatal:
            closure.fatal = res
            return None
        if not res.found or res.info is None or res.realpath is None or res.path is None:
            closure.missing.append(res)
            closure.trace.append((name, None))
            return None
        same = by_real.get(res.realpath)
        if same is not None:
            same.names.add(name)
            return None
        obj = LoadedObject(name, res.path, res.realpath, res.info, requester, origin_of(res.path, searcher.cwd),
                           names={name, res.path}, resolution=res)
        by_real[res.realpath] = obj
        closure.objects.append(obj)
        closure.trace.append((name, res.path))
        return obj

    for name in preload:
        obj = request(name, main)
        if closure.fatal:
            return closure
        if obj is not None:
            queue.append(obj)
    while queue and len(closure.objects) < max_objects:
        current = queue.popleft()
        for name in current.info.needed:
            obj = request(name, current)
            if closure.fatal:
                return closure
            if obj is not None:
                queue.append(obj)
    return closure
