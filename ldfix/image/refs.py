"""Image references (syft/skopeo-style transports) and platforms, each parsed once, at the edge."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldfix.errors import UsageError
from ldfix.image.base import ImageConfig
from ldfix.image.strenum import StrEnum


class Transport(StrEnum):
    DAEMON = "daemon"
    DIR = "dir"
    DOCKER_ARCHIVE = "docker-archive"
    OCI_ARCHIVE = "oci-archive"
    OCI_DIR = "oci-dir"
    REGISTRY = "registry"


TRANSPORTS = tuple(t for t in Transport if t not in (Transport.DAEMON, Transport.REGISTRY))
_NAME = re.compile(r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    transport: Transport
    value: str  # the path, or the daemon reference
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None


def parse_ref(ref: str) -> ImageRef:
    if ref.startswith("registry:"):
        named = _parse_name(ref[len("registry:"):], "registry:")
        if named.digest == named.value:
            raise UsageError(f"{ref!r} has no repository name", "for example registry:nvidia/cuda@sha256:...")
        return ImageRef(Transport.REGISTRY, named.value, named.repository, named.tag, named.digest)
    for t in TRANSPORTS:
        if ref.startswith(t.value + ":"):
            path = ref[len(t.value) + 1:]
            if not path:
                example = "rootfs" if t is Transport.DIR else "image"
                raise UsageError(f"{t.value}: needs a path", f"for example {t.value}:/path/to/{example}")
            return ImageRef(t, path)
    return _parse_name(ref, "")


def _parse_name(ref: str, prefix: str) -> ImageRef:
    """NAME:TAG, NAME@sha256:..., NAME:TAG@sha256:... (a daemon or registry reference)."""
    if not ref:
        raise UsageError(f"{prefix} needs an image name", f"for example {prefix}nvidia/cuda:12.8.1-runtime-ubuntu24.04")
    if _DIGEST.match(ref):
        return ImageRef(Transport.DAEMON, ref, digest=ref)
    name, digest = ref, None
    if "@" in ref:
        name, digest = ref.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(f"bad digest in image reference {ref!r}", "a digest looks like sha256:<64 hex digits>")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise UsageError(f"bad tag in image reference {ref!r}", "tags are letters, digits, '_', '.' and '-'")
    if not _NAME.match(name):
        raise UsageError(f"cannot parse image reference "
            f"{ref!r}",
                         "use NAME:TAG, NAME@sha256:..., registry:NAME:TAG, dir:PATH, docker-archive:PATH, "
                         "oci-archive:PATH, or oci-dir:PATH")
    if tag is None and digest is None:
        raise UsageError(f"image reference {ref!r} has no tag", f"name the tag explicitly, for example {name}:latest "
                         "(ldfix never assumes latest)")
    return ImageRef(Transport.DAEMON, ref, name, tag, digest)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "i686": "386"}
_OSES = ("linux", "windows", "darwin", "freebsd")


@dataclass(frozen=True)
class Platform:
    """`--platform`: `ARCH`, `OS/ARCH` or `OS/ARCH/VARIANT`, as Docker takes it (the OS defaults to linux)."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    def matches(self, config: ImageConfig) -> bool:
        if (self.os, self.architecture) != (config.os, config.architecture):
            return False
        if self.variant is None:
            return True
        default = "v8" if self.architecture == "arm64" else None
        return self.variant == (config.variant or default)


def parse_platform(text: str) -> Platform:
    parts = text.strip().lower().split("/")
    bad = UsageError(f"--platform {text!r} is not ARCH, OS/ARCH or OS/ARCH/VARIANT",
                     "for example --platform linux/amd64, --platform arm64 or --platform linux/arm64/v8")
    if not all(re.fullmatch(r"[a-z0-9_-]+", p) for p in parts) or len(parts) > 3:
        raise bad
    if len(parts) == 1:
        if parts[0] in _OSES:
            raise bad
        parts = ["linux", *parts]
    os_name, arch, *rest = parts
    if os_name not in _OSES:
        raise bad
    return Platform(os_name, _ARCH_ALIASES.get(arch, arch), rest[0] if rest else None)
