"""`registry:NAME[:TAG|@sha256:...]`: an image read straight from its registry, no daemon and no disk.

The manifest (Docker schema 2 or OCI; a manifest list or OCI index resolved to one platform) names a config
and layers. Each layer blob is streamed once through the layer merge (stream.py) with the scan's keep
policy; its sha256 is checked against its digest as it streams, and a mismatch fails the scan. A dropped
connection resumes with an HTTP Range request. With `--cache DIR` the blobs and what the scan read of them
are kept by digest (`DIR/blobs/sha256/HEX`, `DIR/reads/VERSION/HEX.*`), so a later scan of an image that
shares layers downloads and reads only the new ones. Temporary files live next to their final names and
are removed unless the blob was complete and verified."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ldfix.errors import ImageAccessError
from ldfix.image import tarstream
from ldfix.image.base import ImageView, config_from
from ldfix.image.blobcache import BlobCache
from ldfix.image.blobstream import Blob, Endpoint, Progress
from ldfix.image.decode import Decoder, LayerStreamError, PrefetchingDecoder
from ldfix.image.layers import MergedTree
from ldfix.image.refs import Platform
from ldfix.image.registry import Client, RemoteName
from ldfix.image.stream import (
    KeepPolicy,
    StreamedLayer,
    merge_stream_layer,
    read_stream_layer,
    reading_ahead,
    stoppable,
)

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "tar",
}


def host_platform() -> Platform:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    return Platform("linux", arch, "v8" if arch == "arm64" else "v7" if arch == "arm" else None)


def _matches(entry: dict[str, Any], want: Platform) -> bool:
    p = entry.get("platform") or {}
    if (p.get("os"), p.get("architecture")) != (want.os, want.architecture):
        return False
    if want.variant is None or want.architecture != "arm64":
        return want.variant is None or p.get("variant") in (want.variant, None)
    return bool(p.get("variant", "v8") == want.variant)


def _platform_text(entry: dict[str, Any]) -> str:
    p = entry.get("platform") or {}
    return "/".join(str(x) for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def _json(resp: Any, what: str, digest: str | None) -> dict[str, Any]:
    body = resp.content
    if digest is not None and "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise ImageAccessError(f"{what} does not match its digest {digest}",
                               "the registry (or a proxy) altered it; try again, or another mirror")
    try:
        data = json.loads(body)
    except ValueError:
        raise ImageAccessError(f"{what} is not JSON", "is this a container registry?") from None
    if not isinstance(data, dict):
        raise ImageAccessError(f"{what} is not a JSON object", "is this a container registry?")
    return data


def _manifest(ep: Endpoint, platform: Platform | None) -> tuple[dict[str, Any], Platform | None]:
    name = ep.name
    ref = name.reference
    digest = ref if ref.startswith("sha256:") else None
    what = f"the manifest of {name}"
    data = _json(ep.client.get(f"{name.repository}/manifests/{ref}", what, ACCEPT), what, digest)
    kind = data.get("mediaType") or ("index" if "manifests" in data else "")
    if kind in INDEX_TYPES or "manifests" in data:
        want = platform or host_platform()
        entries = [m for m in data.get("manifests") or [] if isinstance(m, dict)]
        pick = next((m for m in entries if _matches(m, want)), None)
        if pick is None:
            have = ", ".join(sorted({_platform_text(m) for m in entries if _platform_text(m)})) or "none"
            raise ImageAccessError(f"{name} has no {want} image (it has: {have})",
                                   "pick one with --platform OS/ARCH")
        digest = str(pick.get("digest"))
        what = f"the {want} manifest of {name}"
        data = _json(ep.client.get(f"{name.repository}/manifests/{digest}", what, ACCEPT), what, digest)
        return data, want
    if data.get("schemaVersion") == 1:
        raise ImageAccessError(f"{name} has a Docker schema 1 manifest, which registries have deprecated",
                               "push the image again with a current Docker or skopeo")
    return data, None


def _endpoints(name: RemoteName, mirrors: Sequence[str]) -> list[Endpoint]:
    eps = [Endpoint(Client(name.domain, url), name) for url in mirrors] if name.hub else []
    return [*eps, Endpoint(Client(name.domain), name)]


# -- the image ------------------------------------------------------------------------------------------

def _check_media(ep: Endpoint, desc: dict[str, Any]) -> str:
    digest = str(desc.get("digest", ""))
    media = str(desc.get("mediaType", ""))
    if media not in LAYER_TYPES:
        raise ImageAccessError(f"{ep.name} has a layer of unknown media type {media!r}",
                               "ldfix reads tar, tar+gzip and tar+zstd layers")
    return digest


def _read_layer(ep: Endpoint, desc: dict[str, Any], keep: KeepPolicy, cache: BlobCache | None,
                progress: Progress | None, stop: threading.Event) -> StreamedLayer:
    """Download (or take from the cache) one layer blob, verify its digest and read it through with the keep
    policy; touches no tree, so several layers are read at once (`_read_layers`). Once `stop` is set its
    reads of the blob raise Cancelled."""
    digest = str(desc.get("digest", ""))
    size = desc.get("size") if isinstance(desc.get("size"), int) else None
    cached = cache.blob(digest) if cache is not None else None
    if cached is not None and os.path.exists(cached):
        with open(cached, "rb") as fh:
            return _read(PrefetchingDecoder(stoppable(fh.read, stop)), keep, f"the cached layer {digest}", stop)
    tmp = None
    tee = None
    blob: Blob | None = None
    if cached is not None:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cached), prefix=".tmp-")
        tee = os.fdopen(fd, "wb")
    try:
        blob = Blob(ep, digest, size, progress, tee)
        try:
            layer = _read(PrefetchingDecoder(stoppable(blob.read, stop)), keep, f"the layer {blob.short} of {ep.name}",
                          stop)
        except ImageAccessError:
            if blob.drain():  # an altered blob says so, rather than "corrupt gzip"
                blob.verify()
            raise
        blob.verify()
        if tee is not None and tmp is not None and cached is not None:
            tee.close()
            os.replace(tmp, cached)
            tmp = None
        return layer
    finally:
        if blob is not None:
            with contextlib.suppress(Exception):
                blob.sink.close()  # its thread may still be writing the cache copy
        if tee is not None:
            tee.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _read(decoder: Decoder, keep: KeepPolicy, what: str, stop: threading.Event) -> StreamedLayer:
    try:
        return read_stream_layer(decoder, keep, stop)
    except (tarstream.TarError, LayerStreamError) as err:
        raise ImageAccessError(f"{what} is not a readable layer: {err}",
                               "the blob may be truncated or corrupt; try again") from None


def _merge(tree: MergedTree, digest: str, layer: StreamedLayer, cache: BlobCache | None) -> list[str]:
    """Apply a layer that was read over those below it, and keep what was read of it in the cache."""
    short = merge_stream_layer(tree, layer)
    if cache is not None:
        cache.store(digest, layer)
    return short


def _read_layers(view: ImageView, ep: Endpoint, layers: list[dict[str, Any]], keep: KeepPolicy,
                 cache: BlobCache | None, progress: Progress | None) -> list[str]:
    """Merge the layers in order; the files a layer could not keep all of. A layer the cache has read before
    is replayed from it; the others are downloaded and read ahead in threads (stream.reading_ahead). The first
    layer in order that fails is the error."""
    tree = view.fs
    assert isinstance(tree, MergedTree)
    digests = [_check_media(ep, desc) for desc in layers]
    replay = {i for i, digest in enumerate(digests) if cache is not None and cache.has_reads(digest)}

    def reader(desc: dict[str, Any]) -> Callable[[threading.Event], StreamedLayer]:
        return lambda stop: _read_layer(ep, desc, keep, cache, progress, stop)

    short: list[str] = []
    with reading_ahead({i: reader(desc) for i, desc in enumerate(layers) if i not in replay}) as pending:
        for i, digest in enumerate(digests):
            if i in replay and cache is not None and cache.replay(tree, digest):
                if progress:
                    progress({"id": digest.split(":")[-1][:12], "status": "Already exists"})
                continue
            layer = pending[i].result() if i in pending else reader(layers[i])(threading.Event())
            short += _merge(tree, digest, layer, cache)
    return short


def open_registry_image(name: RemoteName, platform: Platform | None, keep: KeepPolicy, cache_dir: str | None = None,
                        mirrors: Sequence[str] = (), progress: Progress | None = None) -> ImageView:
    endpoints = _endpoints(name, mirrors)
    failure: ImageAccessError | None = None
    for ep in endpoints:
        try:
            manifest, picked = _manifest(ep, platform)
            break
        except ImageAccessError as err:
            failure = err  # a mirror that fails hands over to the next, then to the registry itself
    else:
        assert failure is not None
        raise failure
    config_desc = manifest.get("config") or {}
    layers = manifest.get("layers")
    if not isinstance(config_desc, dict) or not isinstance(layers, list):
        raise ImageAccessError(f"the manifest of {name} has no config or layers", "is this an image?")
    cdigest = str(config_desc.get("digest", ""))
    raw = _json(ep.client.get(f"{name.repository}/blobs/{cdigest}", f"the config of {name}"), f"the config of {name}",
                cdigest)
    config = config_from(raw.get("config") or {}, raw.get("architecture"), raw.get("os"), raw.get("variant"))
    if platform is not None and picked is None and not platform.matches(config):
        raise ImageAccessError(f"{name} is {config.platform}, not {platform}", "leave out --platform, or name "
                               "a tag of that platform")
    view = ImageView(MergedTree(), config, f"registry:{name}", cdigest)
    cache = BlobCache(cache_dir, getattr(keep, "version", "0")) if cache_dir else None
    if not all(isinstance(desc, dict) for desc in layers):
        raise ImageAccessError(f"the manifest of {name} lists a layer that is not an object", "is this an image?")
    short = _read_layers(view, ep, layers, keep, cache, progress)
    if short:
        view.notes.append(f"{len(short)} files were read only in part from the layer streams (e.g. {short[0]}): "
                          "what the scan says of them may be incomplete")
    view.notes.append("the image was read from the registry, not run: libraries[].verified is null")
    return view
