"""A framework's requesters and what they ask for, from its files and knowledge/loading.json: the framework's
own objects found by glob, the names a requester dlopens, the files its Python code preloads by absolute
path, the CUDA major it was built for, and the release a library file belongs to."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from ldfix.diagnose.context import describe_tried
from ldfix.diagnose.rules.version_skew import release_of
from ldfix.frameworks.detect import Dist, Install
from ldfix.image.pathwalk import Walker
from ldfix.knowledge import cuda
from ldfix.loader.elf import ElfInfo, ElfReadError, read_elf
from ldfix.loader.search import Resolution, SearchStep


@dataclass(frozen=True)
class Loaded:
    """One library as one requester of a framework loads it."""

    soname: str
    requester: str
    how: str  # needed | dlopen | preload
    res: Resolution | None
    candidates: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        res = self.res
        k = cuda()
        status = ("resolved" if res is not None and res.found else
                  "runtime-provided" if k.is_runtime_provided(self.soname) else "unresolved")
        return {"soname": self.soname, "requester": self.requester, "how": self.how, "status": status,
                "path": res.path if res and res.found else None,
                "via": res.step.value if res and res.found and res.step and res.step not in (
                    SearchStep.LOADED, SearchStep.DIRECT) else None,
                "realpath": res.realpath if res and res.found else None, "candidates": list(self.candidates),
                "verified": None, "tried": list(describe_tried(res))}


def glob(walker: Walker, base: str, pattern: str) -> list[str]:
    """Paths under `base` matching a relative glob, one component at a time (no `**`)."""
    paths = [base]
    for part in pattern.split("/"):
        nxt = []
        for p in paths:
            if any(c in part for c in "*?["):
                nxt += [posixpath.join(p, n) for n in sorted(walker.listdir(p)) if fnmatch.fnmatchcase(n, part)]
            elif walker.stat(posixpath.join(p, part)) is not None:
                nxt.append(posixpath.join(p, part))
        paths = nxt
    return paths


def elf_of(walker: Walker, path: str) -> ElfInfo | None:
    try:
        info = read_elf(walker.reader(path))
    except (ElfReadError, OSError):
        return None
    return info if info.has_dynamic else None


def wheel_release(path: str, wheels: tuple[Dist, ...]) -> str | None:
    """The release of a library file: the version in its name, else the nvidia-* wheel owning its directory."""
    named = release_of(path)
    if named is not None:
        return named
    m = re.search(r"/nvidia/([^/]+)/lib/[^/]+$", path)
    if m is None:
        return None
    folder = m.group(1).replace("_", "-")
    owners = [w for w in wheels if path.startswith(w.site + "/")
              and re.sub(r"^nvidia-|-cu\d+$", "", w.name) in (folder, folder.replace("cuda-", ""))]
    return owners[0].version if len(owners) == 1 else None


def preload_paths(walker: Walker, install: Install) -> list[str]:
    """The files the framework's Python code loads by absolute path, in its order: for each pattern
    (`nvidia/{cublas|cu{cuda}}/lib/libcublasLt.so.*[0-9]`), the first file of its first alternative that
    has one."""
    major = install.built_for_cuda.split(".")[0] if install.built_for_cuda else None
    out: list[str] = []
    for pattern in install.loading.preload_files:
        m = re.search(r"\{([^{}]*(?:\{cuda\}[^{}]*)*)\}", pattern.replace("{cuda}", "\0"))
        alternatives = [pattern]
        if m is not None:
            options = [o.replace("\0", "{cuda}") for o in m.group(1).split("|")]
            alternatives = [pattern.replace("{" + "|".join(options) + "}", o, 1) for o in options]
        for alt in alternatives:
            if "{cuda}" in alt:
                if major is None:
                    continue
                alt = alt.replace("{cuda}", major)
            found = glob(walker, install.dist.site, alt)
            if found:
                out.append(found[0])
                break
    return list(dict.fromkeys(out))


def dlopen_names(install: Install, requester: str, row_sonames: tuple[str, ...]) -> list[str]:
    """The names the framework dlopens from this requester: its release row's, and the loading data's for the
    CUDA major of the requester (xla_cuda13 -> 13) or of the build."""
    how = install.loading
    rel = requester[len(install.dist.site) + 1:]
    if not how.dlopen_from or not fnmatch.fnmatchcase(rel, how.dlopen_from):
        return []
    return [*row_sonames, *(how.dlopen_names or {}).get(cuda_major(install, requester) or "", ())]


def cuda_major(install: Install, requester: str) -> str | None:
    """The CUDA major a requester was built for: its package directory (xla_cuda13) or distribution name
    (cupy-cuda12x) says, else the build."""
    m = re.search(r"cuda(\d+)", requester[len(install.dist.site):]) or re.search(r"cuda(\d+)", install.dist.name)
    return m.group(1) if m else (install.built_for_cuda.split(".")[0] if install.built_for_cuda else None)
