"""The image-filesystem interface the loader model reads through.

Every path is absolute inside the image. Implementations never follow symlinks themselves: `lstat`,
`readlink`, `listdir` and `read` act on the named entry, and callers pass paths whose directory
components are real directories (see `pathwalk`). That keeps host paths from leaking into the model.
"""

from __future__ import annotations

import enum
import os
import stat as statmod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    LINK = "link"
    OTHER = "other"


@dataclass(frozen=True)
class Stat:
    kind: Kind
    size: int = 0
    mode: int = 0o644


class ImageFS(Protocol):
    def lstat(self, path: str) -> Stat | None:
        """The entry itself (no symlink following), or None when it does not exist."""

    def readlink(self, path: str) -> str: ...

    def listdir(self, path: str) -> list[str]:
        """Names in a directory (unsorted is fine); [] when it is not a readable directory."""

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        """Names in a directory with the kind of each entry (no symlink following), in one pass."""

    def read(self, path: str, offset: int, size: int) -> bytes:
        """Up to `size` bytes of a regular file from `offset`; raises OSError when unreadable."""


@dataclass(frozen=True)
class ImageConfig:
    """What the image config says about the process the loader runs in."""

    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    onbuild: tuple[str, ...] = ()  # Config.OnBuild: triggers a child build runs right after its FROM

    @property
    def platform(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True)
class DaemonImage:
    """Where a daemon image lives, for whoever runs it (the composition root picks the oracle)."""

    engine: Any  # an image.engine.Engine, or None where only the docker SDK reaches the daemon (TLS, ssh)
    image_id: str
    local: bool  # the daemon's overlay2 directories are readable here (and so writable as root)


@dataclass
class ImageView:
    """One image: its filesystem, its config, and how to name it in reports."""

    fs: ImageFS
    config: ImageConfig
    ref: str
    image_id: str | None = None
    notes: list[str] = field(default_factory=list)
    daemon: DaemonImage | None = None  # set when the image is in a Docker daemon (its loader can be run)
    closers: list[Callable[[], None]] = field(default_factory=list)  # temporary files to remove at the end
    snapshot_key: str | None = None  # image/snapshot.py's key when what is learnt of its files may be kept

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name


def stat_of(st: os.stat_result) -> Stat:
    """An os.lstat result as a Stat (the one mapping of host file types to kinds)."""
    mode = st.st_mode
    kind = (Kind.FILE if statmod.S_ISREG(mode) else Kind.DIR if statmod.S_ISDIR(mode)
            else Kind.LINK if statmod.S_ISLNK(mode) else Kind.OTHER)
    return Stat(kind, st.st_size, statmod.S_IMODE(mode))


def config_from(inner: Mapping[str, Any], architecture: str | None, os_name: str | None,
                variant: str | None) -> ImageConfig:
    """An ImageConfig from an image config's `config` object (the daemon's `Config`, an OCI config's
    `config`) and its platform fields. Raises TypeError on values of the wrong type."""
    raw_env = inner.get("Env") or []
    if not isinstance(inner, Mapping) or not isinstance(raw_env, list) or not all(isinstance(x, str) for x in raw_env):
        raise TypeError("unexpected JSON types in the image config")
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw_env)
    return ImageConfig(env=env, working_dir=inner.get("WorkingDir") or "/", architecture=architecture or "amd64",
                       os=os_name or "linux", variant=variant or None, labels=dict(inner.get("Labels") or {}),
                       entrypoint=tuple(inner.get("Entrypoint") or ()), user=inner.get("User") or "",
                       onbuild=tuple(inner.get("OnBuild") or ()))
