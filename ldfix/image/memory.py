"""An in-memory image filesystem, for tests and for overlays (a fix applied on top of an image)."""

from __future__ import annotations

from ldfix.image.base import ImageFS, Kind, Stat
from ldfix.image.pathwalk import normalize


class MemoryFS:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[Kind, bytes | str]] = {"/": (Kind.DIR, b"")}

    def _parents(self, path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        cur = ""
        for part in parts:
            cur += "/" + part
            if cur not in self._entries:
                self._entries[cur] = (Kind.DIR, b"")

    def add_file(self, path: str, data: bytes) -> None:
        path = normalize(path)
        self._parents(path)
        self._entries[path] = (Kind.FILE, data)

    def add_dir(self, path: str) -> None:
        path = normalize(path)
        self._parents(path)
        self._entries.setdefault(path, (Kind.DIR, b""))

    def add_symlink(self, path: str, target: str) -> None:
        path = normalize(path)
        self._parents(path)
        self._entries[path] = (Kind.LINK, target)

    def remove(self, path: str) -> None:
        path = normalize(path)
        for key in [k for k in self._entries if k == path or k.startswith(path + "/")]:
            del self._entries[key]

    def lstat(self, path: str) -> Stat | None:
        entry = self._entries.get(path)
        if entry is None:
            return None
        kind, data = entry
        return Stat(kind, len(data) if isinstance(data, bytes) else 0)

    def readlink(self, path: str) -> str:
        kind, data = self._entries[path]
        if kind is not Kind.LINK or not isinstance(data, str):
            raise OSError(f"{path}: not a symlink")
        return data

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [k[len(prefix):] for k in self._entries if k.startswith(prefix) and "/" not in k[len(prefix):]
                and k != path]

    def read(self, path: str, offset: int, size: int) -> bytes:
        kind, data = self._entries[path]
        if kind is not Kind.FILE or not isinstance(data, bytes):
            raise OSError(f"{path}: not a regular file")
        return data[offset:offset + size]


class OverlayFS:
    """`upper` entries hide `lower` ones of the same path (no whiteouts: overlays only add)."""

    def __init__(self, lower: ImageFS, upper: MemoryFS) -> None:
        self.lower = lower
        self.upper = upper

    def lstat(self, path: str) -> Stat | None:
        st = self.upper.lstat(path)
        if st is not None and not (st.kind is Kind.DIR and self.lower.lstat(path) is not None):
            return st
        return self.lower.lstat(path) or st

    def readlink(self, path: str) -> str:
        if self.upper.lstat(path) is not None:
            return self.upper.readlink(path)
        return self.lower.readlink(path)

    def listdir(self, path: str) -> list[str]:
        names = set(self.lower.listdir(path))
        names.update(self.upper.listdir(path))
        return list(names)

    def read(self, path: str, offset: int, size: int) -> bytes:
        if self.upper.lstat(path) is not None:
            return self.upper.read(path, offset, size)
        return self.lower.read(path, offset, size)
