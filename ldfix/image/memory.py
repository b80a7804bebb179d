"""An in-memory image filesystem, for tests and for overlays (a fix applied on top of an image)."""

from __future__ import annotations

from ldfix.image.base import ImageFS, Kind, Stat
from ldfix.image.layers import Kept, MergedTree, Node
from ldfix.image.pathwalk import normalize


class MemoryFS(MergedTree):
    """A MergedTree of one in-memory layer, built by hand."""

    def __init__(self) -> None:
        super().__init__()
        self._layer = self.new_layer(Kept())

    def add_file(self, path: str, data: bytes) -> None:
        self.put(normalize(path), Node(Kind.FILE, len(data), 0o644, self._layer, data))

    def add_dir(self, path: str) -> None:
        path = normalize(path)
        if path not in self.nodes:
            self.put(path, Node(Kind.DIR, 0, 0o755, self._layer))

    def add_symlink(self, path: str, target: str) -> None:
        self.put(normalize(path), Node(Kind.LINK, 0, 0o777, self._layer, None, target))


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
        return [name for name, _ in self.kinds(path)]

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        found = dict(self.lower.kinds(path))
        found.update(self.upper.kinds(path))
        return list(found.items())

    def read(self, path: str, offset: int, size: int) -> bytes:
        if self.upper.lstat(path) is not None:
            return self.upper.read(path, offset, size)
        return self.lower.read(path, offset, size)
