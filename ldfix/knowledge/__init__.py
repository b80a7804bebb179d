"""CUDA facts as validated data shipped in the package (cuda.json records where they come from)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version


@dataclass(frozen=True)
class CudaKnowledge:
    family_prefixes: tuple[str, ...]
    runtime_provided: frozenset[str]
    runtime_patterns: tuple[str, ...]
    runtime_mount_dirs: frozenset[str]
    cudnn_sublibs: dict[int, tuple[str, ...]]
    releases: tuple[tuple[Version, Version, tuple[str, ...]], ...] = ()
    cudnn_majors: tuple[tuple[str, str], ...] = ()

    def releases_for(self, soname: str) -> str | None:
        """The CUDA versions whose toolkit ships `soname` (e.g. libcusolver.so.10: '10.1-11.0')."""
        hits = [(lo, hi) for lo, hi, names in self.releases if soname in names]
        if not hits:
            base, _, major = soname.partition(".so.")
            if base == "libcudnn" or base.startswith("libcudnn_"):
                return dict(self.cudnn_majors).get(major.split(".")[0])
            return None
        lo, hi = hits[0][0], hits[-1][1]
        return f"CUDA {lo}" if lo == hi else f"CUDA {lo}-{hi}"

    def soname_in_release(self, cuda_version: str, soname: str) -> str | None:
        """The soname of `soname`'s library in CUDA `cuda_version` (libcusolver.so.10 in 11.3 -> .11)."""
        try:
            v = Version(".".join(cuda_version.split(".")[:2]))
        except InvalidVersion:
            return None
        base = soname.partition(".so")[0]
        for lo, hi, names in self.releases:
            if lo <= v <= hi:
                return next((n for n in names if n.partition(".so")[0] == base), None)
        return None

    def is_cuda_family(self, soname: str) -> bool:
        base = soname.split(".so", 1)[0]
        return base in self.family_prefixes or base.startswith(self._family_starts)

    @cached_property
    def _family_starts(self) -> tuple[str, ...]:
        return tuple(p + "_" for p in self.family_prefixes)

    def is_runtime_provided(self, soname: str) -> bool:
        return soname in self.runtime_provided or any(fnmatch.fnmatchcase(soname, p) for p in self.runtime_patterns)


def _data(name: str) -> str:
    """A data file shipped beside this module (read as a file: importlib.resources costs a scan ~20 ms of
    imports, and ldfix is never imported from a zip)."""
    with open(os.path.join(os.path.dirname(__file__), name), encoding="utf-8") as fh:
        return fh.read()


def _validate(raw: dict[str, object]) -> CudaKnowledge:
    def strings(key: str) -> list[str]:
        value = raw.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"knowledge/cuda.json: {key} must be a list of non-empty strings")
        return list(value)

    for name in strings("runtime_provided") + strings("cudnn8_sublibs") + strings("cudnn9_sublibs"):
        if not re.fullmatch(r"lib[\w+-]+\.so(\.\d+)*", name):
            raise ValueError(f"knowledge/cuda.json: {name!r} is not a soname")
    releases = []
    for row in raw.get("cuda_releases") or []:  # type: ignore[attr-defined]
        names = tuple(row["sonames"])
        for name in names:
            if not re.fullmatch(r"lib[\w+-]+\.so(\.\d+)*", name):
                raise ValueError(f"knowledge/cuda.json: {name!r} is not a soname")
        releases.append((Version(row["from"]), Version(row["to"]), names))
    majors = raw.get("cudnn_majors") or {}
    return CudaKnowledge(
        tuple(strings("cuda_family_prefixes")),
        frozenset(strings("runtime_provided")),
        tuple(strings("runtime_provided_patterns")),
        frozenset(strings("runtime_mount_dirs")),
        {8: tuple(strings("cudnn8_sublibs")), 9: tuple(strings("cudnn9_sublibs"))},
        tuple(releases),
        tuple((str(k), str(v)) for k, v in majors.items()),  # type: ignore[attr-defined]
    )


@lru_cache(maxsize=1)
def cuda() -> CudaKnowledge:
    text = _data("cuda.json")
    return _validate(json.loads(text))


@dataclass(frozen=True)
class FrameworkNeeds:
    name: str
    version: str
    cuda: str
    sonames: tuple[str, ...]


@lru_cache(maxsize=1)
def _frameworks() -> dict[str, Any]:
    text = _data("frameworks.json")
    data = json.loads(text)
    for name, rows in data["frameworks"].items():
        for row in rows:
            for soname in row["sonames"]:
                if not re.fullmatch(r"lib[\w+-]+\.so(\.\d+)*", soname):
                    raise ValueError(f"knowledge/frameworks.json: {name}: {soname!r} is not a soname")
            Version(row["from"])
            Version(row["to"])
    return data  # type: ignore[no-any-return]


def framework_needs(spec: str) -> FrameworkNeeds:
    """The sonames `NAME==VERSION` (e.g. tensorflow==2.6.0, torch==2.3.1) asks the loader for. Raises
    ValueError with a readable reason for other forms or unknown frameworks/versions."""
    if re.search(r"[<>!~]|=(?!=)", spec.replace("==", "")):
        raise ValueError(f"{spec!r} needs one exact version (NAME==VERSION), not a range")
    name, sep, version = spec.partition("==")
    name = name.strip().lower()
    version = version.strip().split("+", 1)[0]
    data = _frameworks()
    name = data["aliases"].get(name, name)
    if name not in data["frameworks"]:
        raise ValueError(f"unknown framework {name!r} (known: {', '.join(sorted(data['frameworks']))})")
    if not sep or not version:
        raise ValueError(f"{spec!r} needs an exact version, e.g. {name}==2.6.0")
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise ValueError(f"{version!r} is not a version") from None
    for row in data["frameworks"][name]:
        if Version(row["from"]) <= wanted <= Version(row["to"]):
            return FrameworkNeeds(name, version, row["cuda"], tuple(row["sonames"]))
    rows = data["frameworks"][name]
    known = ", ".join(f"{r['from']} to {r['to'].removesuffix('.99')}.x" for r in rows)
    raise ValueError(f"no table for {name} {version} (known: {known})")


@dataclass(frozen=True)
class Loading:
    """How one framework loads CUDA libraries (knowledge/loading.json, with its provenance)."""

    framework: str
    packages: tuple[str, ...]  # distribution names that install it (normalized: lower case, '-')
    package_dir: str
    requesters: tuple[str, ...]  # globs relative to site-packages: the framework's own ELF objects
    dlopen_from: str | None  # the requester that dlopens the release row's sonames
    version_file: str | None
    cuda_pattern: str | None
    preload: tuple[str, ...]  # site-packages globs of directories its Python code loads libraries from
    preload_files: tuple[str, ...] = ()  # files (site-relative) its Python code loads by absolute path, in order
    dlopen_names: dict[str, tuple[str, ...]] | None = None  # CUDA major -> names dlopen_from dlopens
    cuda_extra: tuple[str, str] | None = None  # (pip spec with {version}/{major}, the first release it is read from)

    def extra_for(self, version: str, major: str | None) -> str | None:
        """The pip line that brings all of this release's CUDA wheels, where the data knows one."""
        from packaging.version import InvalidVersion, Version

        if self.cuda_extra is None or not major:
            return None
        spec, since = self.cuda_extra
        try:
            if Version(version.split("+")[0]) < Version(since):
                return None
        except InvalidVersion:
            return None
        return "pip install '" + spec.format(version=version.split("+")[0], major=major) + "'"


@lru_cache(maxsize=1)
def loading() -> tuple[Loading, ...]:
    text = _data("loading.json")
    data = json.loads(text)
    out = []
    for name, row in data["frameworks"].items():
        if not row["packages"] or not row["requesters"]:
            raise ValueError(f"knowledge/loading.json: {name} needs packages and requesters")
        if row["cuda_pattern"]:
            re.compile(row["cuda_pattern"])
        by_cuda = {str(k): tuple(v) for k, v in (row.get("dlopen_names_by_cuda") or {}).items()}
        out.append(Loading(name, tuple(row["packages"]), row["package_dir"], tuple(row["requesters"]),
                           row["dlopen_from"], row["version_file"], row["cuda_pattern"], tuple(row["preload"]),
                           tuple(row.get("preload_files") or ()), by_cuda or None,
                           (row["cuda_extra"]["spec"], row["cuda_extra"]["since"]) if row.get("cuda_extra") else None))
    return tuple(out)


def release_row(framework: str, version: str) -> FrameworkNeeds | None:
    """The frameworks.json row of an installed release, or None when the data does not know it."""
    try:
        return framework_needs(f"{framework}=={version}")
    except ValueError:
        return None


@lru_cache(maxsize=1)
def _wheel_names() -> dict[str, dict[str, str]]:
    text = _data("loading.json")
    return dict(json.loads(text)["wheels"])


def wheel_for(soname: str, cuda_version: str | None) -> str | None:
    """The PyPI wheel that ships `soname` for that CUDA major (libcublasLt.so.12, 12.8 -> nvidia-cublas-cu12)."""
    if not cuda_version:
        return None
    base = soname.split(".so", 1)[0]
    base = "libcudnn" if base.startswith("libcudnn") else base
    return _wheel_names().get(base, {}).get(cuda_version.split(".")[0])
