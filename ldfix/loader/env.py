"""Search-path strings: LD_LIBRARY_PATH, DT_RPATH and DT_RUNPATH (elf/dl-load.c `fillin_rpath`)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_DST = re.compile(r"\$(\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


@dataclass(frozen=True)
class PathEntry:
    raw: str  # as written
    path: str | None  # the directory the loader searches, None when the entry is dropped
    note: str | None = None  # why it is dropped or what it means (empty = working directory, ...)


def split_ld_library_path(value: str | None) -> list[str] | None:
    """Elements of LD_LIBRARY_PATH; None when unset or empty (an empty value counts as unset)."""
    if not value:
        return None
    return re.split(r"[:;]", value)


def split_dt_path(value: str | None) -> list[str] | None:
    """Elements of DT_RPATH/DT_RUNPATH (`:` only). An empty string has no elements (observed on 2.36: a
    DT_RPATH of "" searches nothing, while ":" searches the working directory)."""
    if value is None:
        return None
    return value.split(":") if value else []


def expand(element: str, origin: str | None, lib: str, platform: str | None) -> tuple[str | None, str | None]:
    """Expand DSTs in one element. Returns (expanded or None when it cannot be expanded, note)."""
    failed: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(3)
        if name == "ORIGIN":
            if origin is None:
                failed.append("$ORIGIN is unknown here")
                return ""
            return origin
        if name == "LIB":
            return lib
        if platform is None:
            failed.append("$PLATFORM depends on the host CPU")
            return ""
        return platform

    out = _DST.sub(sub, element)
    if failed:
        return None, failed[0]
    return out, None


def search_dirs(elements: list[str], origin: str | None, lib: str, platform: str | None) -> list[PathEntry]:
    """The directories the loader searches for a list of path elements, in order, duplicates removed.

    `path` is the directory string glibc keeps: trailing slashes stripped, not canonicalised; "" for an
    empty element (the working directory at lookup time) and a relative string for a relative element.
    """
    out: list[PathEntry] = []
    seen: set[str] = set()
    for raw in elements:
        note: str | None
        if raw == "":
            path, note = "", "empty entry: searches the working directory"
        else:
            expanded, note = expand(raw, origin, lib, platform)
            if expanded is None:
                out.append(PathEntry(raw, None, note))
                continue
            if expanded == "":
                continue  # glibc ignores an element that expands to nothing
            path = expanded
            while len(path) > 1 and path.endswith("/"):
                path = path[:-1]
            if not path.startswith("/"):
                note = "relative entry: resolved against the working directory"
        if path in seen:
            continue
        seen.add(path)
        out.append(PathEntry(raw, path, note))
    return out


def opened_path(directory: str, name: str) -> str:
    """The string glibc passes to open() for `name` in a search directory."""
    if directory == "":
        return name
    return directory + name if directory.endswith("/") else directory + "/" + name


def absolute(path: str, cwd: str) -> str:
    """Where a path the loader opens lies in the image, given the process working directory."""
    return path if path.startswith("/") else posixpath.join(cwd or "/", path)


# a directory spelling that can go into an LD_LIBRARY_PATH value (or an unquoted RUN argument) as it is
SAFE_DIR = re.compile(r"^/[A-Za-z0-9._+@/-]*$")


def in_dir_named(path: str, name: str) -> bool:
    """Whether `path` is, or lies under, a directory called `name` (a CUDA `compat` or `stubs` directory)."""
    return f"/{name}/" in path.rstrip("/") + "/"
