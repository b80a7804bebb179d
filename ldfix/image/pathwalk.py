"""Symlink resolution inside an image root: absolute targets are root-relative, `..` stops at `/`."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from ldfix.image.base import ImageFS, Kind, Stat

MAX_LINKS = 40  # as the kernel's ELOOP limit
HEAD = 4096  # bytes a file reader fetches on its first read (Walker.reader)


class PathError(Exception):
    """A path could not be resolved; `reason` is what the kernel would say (ENOENT, ENOTDIR, ELOOP)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def normalize(path: str) -> str:
    """Lexical clean-up of an absolute path; `..` at the root stays at the root."""
    if not path.startswith("/"):
        path = "/" + path
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


class Walker:
    """Resolves paths over an ImageFS, memoising directory resolutions."""

    def __init__(self, fs: ImageFS) -> None:
        self.fs = fs
        self._dir_cache: dict[str, str | PathError] = {"/": "/"}
        self._stat_cache: dict[str, Stat | None] = {}

    def lstat(self, path: str) -> Stat | None:
        try:
            return self._stat_cache[path]
        except KeyError:
            st = self.fs.lstat(path)
            self._stat_cache[path] = st
            return st

    def resolve(self, path: str, follow_last: bool = True) -> str:
        """The physical path of `path` (no symlinks left); raises PathError."""
        budget = [MAX_LINKS]
        return self._resolve(normalize_keep_dotdot(path), follow_last, budget)

    def _resolve_dir(self, path: str, budget: list[int]) -> str:
        cached = self._dir_cache.get(path)
        if cached is not None:
            if isinstance(cached, PathError):
                raise cached
            return cached
        try:
            real = self._resolve(path, True, budget)
            st = self.lstat(real)
            if st is None:
                raise PathError(path, "ENOENT")
            if st.kind is not Kind.DIR:
                raise PathError(path, "ENOTDIR")
        except PathError as err:
            self._dir_cache[path] = err
            raise
        self._dir_cache[path] = real
        return real

    def _resolve(self, path: str, follow_last: bool, budget: list[int]) -> str:
        if path == "/":
            return "/"
        parent, name = posixpath.split(path.rstrip("/"))
        if name == "..":
            real_parent = self._resolve_dir(parent or "/", budget)
            return posixpath.dirname(real_parent) or "/"
        if name == ".":
            return self._resolve_dir(parent or "/", budget)
        real_parent = self._resolve_dir(parent or "/", budget)
        candidate = real_parent.rstrip("/") + "/" + name
        st = self.lstat(candidate)
        if st is None or st.kind is not Kind.LINK or not follow_last:
            return candidate
        budget[0] -= 1
        if budget[0] < 0:
            raise PathError(path, "ELOOP")
        target = self.fs.readlink(candidate)
        if not target:
            raise PathError(path, "ENOENT")
        if target.startswith("/"):
            nxt = normalize_keep_dotdot(target)
        else:
            nxt = normalize_keep_dotdot(real_parent.rstrip("/") + "/" + target)
        return self._resolve(nxt, True, budget)

    def stat(self, path: str) -> tuple[str, Stat] | None:
        """Follow symlinks; (physical path, stat) or None when it does not resolve to an entry."""
        try:
            real = self.resolve(path)
        except PathError:
            return None
        st = self.lstat(real)
        if st is None:
            return None
        return real, st

    def is_dir(self, path: str) -> bool:
        found = self.stat(path)
        return found is not None and found[1].kind is Kind.DIR

    def listdir(self, path: str) -> list[str]:
        found = self.stat(path)
        if found is None or found[1].kind is not Kind.DIR:
            return []
        return self.fs.listdir(found[0])

    def reader(self, physical: str) -> Callable[[int, int], bytes]:
        """A (offset, size) -> bytes reader of a physical path, as the ELF readers take. Its first read, at
        offset 0, fetches the file's first HEAD bytes, which serve the reads that lie wholly inside them (the
        ELF header, the program headers, often the dynamic strings): one read of the image instead of several.
        A read past what the head holds goes to the file, so a short file or a head kept only in part
        (streamed layers) gives what a direct read would."""
        head = b""

        def read(offset: int, size: int) -> bytes:
            nonlocal head
            if offset < 0 or size <= 0 or offset >= 1 << 62:  # an offset no file has (a hostile header)
                return b""
            end = offset + size
            if end <= len(head):
                return head[offset:end]
            if offset == 0 and not head and size < HEAD:
                head = self.fs.read(physical, 0, HEAD)
                return head[:size]
            return self.fs.read(physical, offset, size)

        return read

    def read(self, path: str, offset: int, size: int) -> bytes:
        found = self.stat(path)
        if found is None:
            raise FileNotFoundError(path)
        if found[1].kind is not Kind.FILE:
            raise IsADirectoryError(path) if found[1].kind is Kind.DIR else OSError(path)
        return self.fs.read(found[0], offset, size)


def normalize_keep_dotdot(path: str) -> str:
    """Remove empty and `.` components but keep `..`: it must be applied after resolving its parent."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)
