"""`--cache DIR` for registry images: layer blobs by digest (`DIR/blobs/sha256/HEX`) and what a scan read
of each (`DIR/reads/VERSION/HEX.json` + `.bin`: the layer's members in order and the kept byte ranges), so a
later scan replays a layer without downloading or reading it. Files are written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from ldfix.errors import ImageAccessError
from ldfix.image import tarstream
from ldfix.image.layers import MergedTree, member_path
from ldfix.image.stream import Sparse, StreamedLayer, merge_stream_layer


class BlobCache:
    def __init__(self, root: str, version: str) -> None:
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.reads = os.path.join(root, "reads", version)
        try:
            os.makedirs(self.blobs, exist_ok=True)
            os.makedirs(self.reads, exist_ok=True)
        except OSError as err:
            raise ImageAccessError(f"cannot use --cache {root}: {err.strerror or err}",
                                   "give a writable directory") from None

    def blob(self, digest: str) -> str:
        return os.path.join(self.blobs, digest.split(":")[-1])

    def read_paths(self, digest: str) -> tuple[str, str]:
        base = os.path.join(self.reads, digest.split(":")[-1])
        return base + ".json", base + ".bin"

    def has_reads(self, digest: str) -> bool:
        """Whether an earlier scan kept what it read of this layer (replay may still find it unusable)."""
        return all(os.path.isfile(p) for p in self.read_paths(digest))

    def replay(self, tree: MergedTree, digest: str) -> bool:
        """Apply a layer from what an earlier scan kept of it; False when nothing usable is stored."""
        index, data = self.read_paths(digest)
        try:
            with open(index, encoding="utf-8") as fh:
                members = json.load(fh)
            with open(data, "rb") as fh:
                blob = fh.read()
        except (OSError, ValueError):
            return False
        read: list[tuple[tarstream.Member, str, Sparse | None]] = []
        pos = 0
        for name, kind, size, mode, link, major, minor, spans in members:
            ranges = []
            for start, length in spans:
                ranges.append((start, blob[pos:pos + length]))
                pos += length
            m = tarstream.Member(name, kind, size, mode, link, 0, major, minor)
            read.append((m, member_path(name), Sparse(ranges) if kind == tarstream.REG else None))
        merge_stream_layer(tree, StreamedLayer(read, []))
        return True

    def store(self, digest: str, layer: StreamedLayer) -> None:
        """Keep the members of a layer that was read, in order, with the byte ranges kept of each."""
        index, data = self.read_paths(digest)
        members = []
        chunks = []
        for m, _, sparse in layer.members:
            spans = []
            if sparse is not None:
                for start, piece in zip(sparse.starts, sparse.data, strict=True):
                    spans.append([start, len(piece)])
                    chunks.append(piece)
            members.append([m.name, m.type, m.size, m.mode, m.linkname, m.devmajor, m.devminor, spans])
        _atomic(data, b"".join(chunks))
        _atomic(index, json.dumps(members).encode())


def _atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
