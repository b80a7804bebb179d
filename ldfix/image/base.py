"""The image-filesystem interface the loader model reads through.

Every path is absolute inside the image. Implementations never follow symlinks themselves: `lstat`,
`readlink`, `listdir` and `read` act on the named entry, and callers pass paths whose directory
components are real directories (see `pathwalk`). That keeps host paths from leaking into the model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


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


@dataclass
class ImageView:
    """One image: its filesystem, its config, and how to name it in reports."""

    fs: ImageFS
    config: ImageConfig
    ref: str
    image_id: str | None = None
    notes: list[str] = field(default_factory=list)
    oracle: object | None = None  # a runner for the image's own loader, when the source provides one


def join(directory: str, name: str) -> str:
    return directory.rstrip("/") + "/" + name if directory != "/" else "/" + name
