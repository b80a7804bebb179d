"""`dir:PATH`: a root filesystem directory on this machine."""

from __future__ import annotations

import os

from ldfix.errors import ImageAccessError
from ldfix.image.base import ImageConfig, ImageView, Kind, Stat, stat_of


class RootFS:
    """Reads a directory as an image root. Paths given are physical (see pathwalk), so no host symlink is
    ever followed: a link to `/usr/lib` inside the root means the root's `/usr/lib`."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _host(self, path: str) -> str:
        if "\0" in path:  # no file has such a name (a NUL byte in an ld.so.conf line, say)
            raise FileNotFoundError(path)
        return self.root + path if path != "/" else self.root

    def lstat(self, path: str) -> Stat | None:
        try:
            return stat_of(os.lstat(self._host(path)))
        except OSError:
            return None

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        try:
            with os.scandir(self._host(path)) as it:
                entries = list(it)
        except OSError:
            return []
        out = []
        for e in entries:
            try:
                out.append((e.name, stat_of(e.stat(follow_symlinks=False)).kind))
            except OSError:
                continue
        return out

    def readlink(self, path: str) -> str:
        return os.readlink(self._host(path))

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(self._host(path))
        except OSError:
            return []

    def read(self, path: str, offset: int, size: int) -> bytes:
        fd = os.open(self._host(path), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)


def open_rootfs(path: str, env: dict[str, str], working_dir: str = "/", architecture: str = "amd64") -> ImageView:
    if not os.path.exists(path):
        raise ImageAccessError(f"dir:{path} does not exist", "give the path of an unpacked root filesystem")
    if not os.path.isdir(path):
        raise ImageAccessError(f"dir:{path} is not a directory", "give the path of an unpacked root filesystem")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ImageAccessError(f"dir:{path} is not readable", "run with permission to read that directory")
    config = ImageConfig(env=dict(env), working_dir=working_dir, architecture=architecture)
    return ImageView(fs=RootFS(path), config=config, ref=f"dir:{path}")
