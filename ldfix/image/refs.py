"""Parsing image references (syft/skopeo-style transports)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ldfix.errors import UsageError

TRANSPORTS = ("dir", "docker-archive", "oci-archive", "oci-dir")
_NAME = re.compile(r"^(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    transport: str  # daemon | dir | docker-archive | oci-archive | oci-dir
    value: str  # the path, or the daemon reference
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None


def parse_ref(ref: str) -> ImageRef:
    for t in TRANSPORTS:
        if ref.startswith(t + ":"):
            path = ref[len(t) + 1:]
            if not path:
                example = "rootfs" if t == "dir" else "image"
                raise UsageError(f"{t}: needs a path", f"for example {t}:/path/to/{example}")
            return ImageRef(t, path)
    if _DIGEST.match(ref):
        return ImageRef("daemon", ref, digest=ref)
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
                         "use NAME:TAG, NAME@sha256:..., dir:PATH, docker-archive:PATH, oci-archive:PATH, "
                         "or oci-dir:PATH")
    if tag is None and digest is None:
        raise UsageError(f"image reference {ref!r} has no tag", f"name the tag explicitly, for example {name}:latest "
                         "(ldfix never assumes latest)")
    return ImageRef("daemon", ref, name, tag, digest)
