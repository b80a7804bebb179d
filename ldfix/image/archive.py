"""Images as files: `docker-archive:` (a `docker save` tarball, legacy or OCI-style) and `oci-archive:` /
`oci-dir:` (an OCI image layout, tarred or not).

Layers are read where they lie. An uncompressed layer inside an uncompressed archive is indexed once (tar
headers only, tarstream.py) and every read seeks straight to the member's bytes, so a 1 GB library costs a few
small reads. A gzip- or zstd-compressed layer has no random access: it is streamed once (stream.py), keeping
what the scan's keep policy asks for, and never written to disk. Layers stack in the one layer merge
(layers.py) with OCI whiteouts."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import IO, Any

from ldfix.errors import ImageAccessError
from ldfix.image import snapshot, tarstream
from ldfix.image.base import ImageView, config_from
from ldfix.image.decode import GZIP, ZSTD, LayerStreamError, PrefetchingDecoder
from ldfix.image.layers import MergedTree, add_tar_layer
from ldfix.image.stream import (
    KeepPolicy,
    ScanAll,
    StreamedLayer,
    merge_stream_layer,
    read_stream_layer,
    reading_ahead,
    stoppable,
)


class _Window:
    """A read-only, seekable window [start, start+size) of a file object (a member of the outer tar)."""

    def __init__(self, fh: IO[bytes], start: int, size: int) -> None:
        self.fh, self.start, self.size, self.pos = fh, start, size, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n < 0 or self.pos + n > self.size:
            n = max(0, self.size - self.pos)
        try:  # pread: windows of one file are read from several threads at once (_read_layers)
            data = os.pread(self.fh.fileno(), n, self.start + self.pos)
        except (AttributeError, OSError, ValueError):
            self.fh.seek(self.start + self.pos)
            data = self.fh.read(n)
        self.pos += len(data)
        return data


class _Source:
    """Named blobs of an archive: members of an outer tar (seekable windows) or files of a directory."""

    def __init__(self, path: str, is_dir: bool) -> None:
        self.path = path
        self.is_dir = is_dir
        self.fh: IO[bytes] | None = None
        self.members: dict[str, tarstream.Member] = {}
        if not is_dir:
            try:
                self.fh = open(path, "rb")  # noqa: SIM115 (kept open for the scan, closed with the view)
                reader = tarstream.file_reader(self.fh, 0, os.fstat(self.fh.fileno()).st_size)
                for m in tarstream.members(reader):
                    self.members[m.name.lstrip("./").lstrip("/")] = m
            except (OSError, tarstream.TarError) as err:
                raise ImageAccessError(f"cannot read {path} as a tar archive: {err}",
                                       "give a `docker save` or OCI archive (.tar, not compressed as a whole)") from err

    def exists(self, name: str) -> bool:
        return os.path.isfile(os.path.join(self.path, name)) if self.is_dir else name in self.members

    def read_json(self, name: str) -> Any:
        try:
            if self.is_dir:
                with open(os.path.join(self.path, name), "rb") as fh:
                    return json.loads(fh.read())
            data = self.window(name).read()
            return json.loads(data)
        except (OSError, ValueError, KeyError) as err:
            raise ImageAccessError(f"{self.path}: cannot read {name}: {err}", "is this an image archive?") from err

    def window(self, name: str) -> _Window:
        m = self.members[name]
        assert self.fh is not None
        return _Window(self.fh, m.offset, m.size)

    def layer(self, name: str) -> tuple[IO[bytes], int, int]:
        """(file, start, size) of an uncompressed layer."""
        if self.is_dir:
            full = os.path.join(self.path, name)
            fh = open(full, "rb")  # noqa: SIM115
            return fh, 0, os.path.getsize(full)
        if name not in self.members:
            raise ImageAccessError(f"{self.path}: the layer {name} is missing", "the archive is incomplete")
        m = self.members[name]
        assert self.fh is not None
        return self.fh, m.offset, m.size


def _blob_name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _layers_and_config(src: _Source, transport: str) -> tuple[list[str], Any, str | None]:
    if transport == "docker-archive" and src.exists("manifest.json"):
        manifest = src.read_json("manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise ImageAccessError(f"{src.path}: manifest.json lists no image", "save the image again")
        if len(manifest) > 1:
            raise ImageAccessError(f"{src.path} holds {len(manifest)} images", "save one image per archive")
        entry = manifest[0]
        config_name = str(entry["Config"])
        digest = config_name.rsplit("/", 1)[-1].removesuffix(".json")
        return [str(x) for x in entry["Layers"]], src.read_json(config_name), f"sha256:{digest}"
    if not src.exists("index.json"):
        raise ImageAccessError(f"{src.path} has neither manifest.json nor index.json",
                               "give a `docker save` tarball or an OCI image layout")
    index = src.read_json("index.json")
    manifests = index.get("manifests") or []
    if not manifests:
        raise ImageAccessError(f"{src.path}: index.json lists no manifest", "the layout is empty")
    desc = manifests[0]
    manifest = src.read_json(_blob_name(desc["digest"]))
    while "manifests" in manifest:  # a nested index (multi-platform): take the linux/amd64 one, else the first
        pick = next((m for m in manifest["manifests"] if (m.get("platform") or {}).get("architecture") == "amd64"),
                    manifest["manifests"][0])
        manifest = src.read_json(_blob_name(pick["digest"]))
    config = src.read_json(_blob_name(manifest["config"]["digest"]))
    layers = [_blob_name(layer["digest"]) for layer in manifest.get("layers", [])]
    return layers, config, str(manifest["config"]["digest"])


def _head(fh: IO[bytes], start: int) -> bytes:
    fh.seek(start)
    return fh.read(4)


def open_archive(transport: str, path: str, keep: KeepPolicy | None = None) -> ImageView:
    """`keep`: what to keep of compressed layers, which are streamed once (without it, every byte)."""
    if not os.path.exists(path):
        raise ImageAccessError(f"{transport}:{path} does not exist", "check the path")
    is_dir = os.path.isdir(path)
    if is_dir != (transport == "oci-dir"):
        want = "a directory (an OCI layout)" if transport == "oci-dir" else "a tar file"
        raise ImageAccessError(f"{transport}:{path} is not {want}",
                               "oci-dir: takes an unpacked OCI layout; docker-archive: and oci-archive: take tar files")
    src = _Source(path, is_dir)
    view = ImageView(MergedTree(), config_from({}, None, None, None), f"{transport}:{path}")
    if src.fh is not None:
        view.closers.append(src.fh.close)
    try:
        layers, config, view.image_id = _layers_and_config(src, transport)
        if not isinstance(config, dict) or not all(isinstance(x, str) for x in layers):
            raise TypeError("unexpected JSON types")
        view.config = config_from(config.get("config") or {}, config.get("architecture"), config.get("os"),
                                  config.get("variant"))
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        view.close()
        raise ImageAccessError(f"{transport}:{path} has a malformed manifest or config ({err})",
                               "save or copy the image again") from None
    except BaseException:
        view.close()
        raise
    short: list[str] = []
    # kept only for a scan's bounded keep policy (never every byte, never a temporary docker save file);
    # an archive file is keyed by its identity, an OCI layout by its path and its blobs' digests
    what = f"{type(keep).__name__}-{getattr(keep, 'version', '')}"
    key = None if keep is None else snapshot.file_key(path, str(view.image_id), what, *layers) \
        if src.fh is not None else snapshot.key_for(f"{os.path.realpath(path)}\0{view.image_id}", [what, *layers])
    kept = snapshot.load_tree(key, src.fh) if key is not None else None
    if kept is not None:
        view.fs, view.snapshot_key = kept, key
        layers = []
    try:
        short += _read_layers(view, src, layers, keep)
    except BaseException:
        view.close()  # no open file or inflated temporary layer outlives a failed open
        raise
    if key is not None and kept is None and not short:
        assert isinstance(view.fs, MergedTree)
        if snapshot.save_tree(key, view.fs):
            view.snapshot_key = key
    if short:
        view.notes.append(f"{len(short)} files were read only in part from a compressed layer (e.g. {short[0]}): "
                          "what the scan says of them may be incomplete")
    view.notes.append("an image archive is read, not run: libraries[].verified is null "
                      "(docker load it and scan it by name to have its loader check the result)")
    return view


def _read_layers(view: ImageView, src: _Source, layers: list[str], keep: KeepPolicy | None) -> list[str]:
    """Merge the layers in order; the files a streamed layer could not keep all of. Uncompressed layers are
    indexed here (tar headers only); compressed ones are read ahead in threads (stream.reading_ahead), so the
    large bench layout's two big gzip layers inflate on two cores at once instead of one after the other."""
    if not layers:
        return []  # the tree came from a snapshot
    assert isinstance(view.fs, MergedTree)
    placed = []
    for name in layers:
        fh, start, size = src.layer(name)
        if src.is_dir:
            view.closers.append(fh.close)
        magic = _head(fh, start)
        placed.append((fh, start, size, magic.startswith(GZIP) or magic == ZSTD))
    policy = keep or ScanAll()

    def reader(fh: IO[bytes], start: int, size: int) -> Callable[[threading.Event], StreamedLayer]:
        return lambda stop: read_stream_layer(PrefetchingDecoder(stoppable(_Window(fh, start, size).read, stop)),
                                              policy, stop)

    short: list[str] = []
    try:
        with reading_ahead({i: reader(fh, start, size) for i, (fh, start, size, streamed) in enumerate(placed)
                            if streamed}) as pending:
            for i, (fh, start, size, _) in enumerate(placed):
                if i in pending:
                    short += merge_stream_layer(view.fs, pending[i].result())
                else:
                    add_tar_layer(view.fs, fh, start, size)
    except (tarstream.TarError, LayerStreamError) as err:
        raise ImageAccessError(f"a layer of the archive is not a readable tar: {err}",
                               "check the archive (docker save / skopeo copy it again)") from err
    return short
