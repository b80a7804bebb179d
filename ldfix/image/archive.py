"""Images as files: `docker-archive:` (a `docker save` tarball, legacy or OCI-style) and `oci-archive:` /
`oci-dir:` (an OCI image layout, tarred or not).

Layers are read where they lie. An uncompressed layer inside an uncompressed archive is indexed once (tar
headers only) and every read seeks straight to the member's bytes, so a 1 GB library costs a few small reads.
A gzip-compressed layer has no random access: it is decompressed once, sequentially, into a temporary file
(removed when the scan ends) and then read the same way. Layers stack with OCI whiteouts (`.wh.NAME` hides a
lower entry, `.wh..wh..opq` hides a directory's lower contents)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from ldfix.errors import ImageAccessError
from ldfix.image.base import ImageConfig, ImageView, Kind, Stat
from ldfix.image.pathwalk import normalize

GZIP = b"\x1f\x8b"
ZSTD = b"\x28\xb5\x2f\xfd"


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
        self.fh.seek(self.start + self.pos)
        data = self.fh.read(n)
        self.pos += len(data)
        return data


@dataclass
class _Entry:
    kind: Kind
    size: int
    mode: int
    layer: int  # index into ArchiveFS.layers
    offset: int  # where the member's data starts in that layer file
    target: str = ""  # symlink target, or the path a hard link points at


class ArchiveFS:
    """The merged filesystem of a list of layer tars (bottom first)."""

    def __init__(self) -> None:
        self.layers: list[tuple[IO[bytes], int]] = []  # (file, base offset of the layer inside it)
        self.entries: dict[str, _Entry] = {"/": _Entry(Kind.DIR, 0, 0o755, -1, 0)}
        self.children: dict[str, set[str]] = {"/": set()}
        self._temps: list[str] = []
        self._files: list[IO[bytes]] = []

    # -- building ------------------------------------------------------------------------------------
    def add_layer(self, fh: IO[bytes], start: int, size: int) -> None:
        index = len(self.layers)
        self.layers.append((fh, start))
        window = _Window(fh, start, size)
        try:
            with tarfile.open(fileobj=window, mode="r:") as tar:  # type: ignore[call-overload]
                for member in tar:
                    self._apply(member, index)
        except tarfile.TarError as err:
            raise ImageAccessError(f"a layer of the archive is not a readable tar: {err}",
                                   "check the archive (docker save / skopeo copy it again)") from err

    def _apply(self, m: tarfile.TarInfo, layer: int) -> None:
        path = normalize("/" + m.name.lstrip("./").lstrip("/")) if m.name not in (".", "./") else "/"
        parent, _, base = path.rpartition("/")
        parent = parent or "/"
        if base == ".wh..wh..opq":
            for child in list(self.children.get(parent, ())):
                self._remove(parent.rstrip("/") + "/" + child)
            return
        if base.startswith(".wh."):
            self._remove(parent.rstrip("/") + "/" + base[4:])
            return
        self._parents(path)
        if m.isdir():
            entry = _Entry(Kind.DIR, 0, m.mode, layer, 0)
            if path in self.entries and self.entries[path].kind is Kind.DIR:
                self.entries[path] = entry  # a directory in an upper layer keeps the lower contents
                return
        elif m.issym():
            entry = _Entry(Kind.LINK, 0, m.mode, layer, 0, m.linkname)
        elif m.islnk():
            target = normalize("/" + m.linkname.lstrip("./").lstrip("/"))
            found = self.entries.get(target)
            if found is None:
                return
            entry = _Entry(found.kind, found.size, found.mode, found.layer, found.offset, found.target)
        elif m.isreg():
            entry = _Entry(Kind.FILE, m.size, m.mode, layer, m.offset_data)
        else:
            entry = _Entry(Kind.OTHER, 0, m.mode, layer, 0)
        if path in self.entries:
            self._remove(path)
        self.entries[path] = entry
        self.children.setdefault(parent, set()).add(base)
        if entry.kind is Kind.DIR:
            self.children.setdefault(path, set())

    def _parents(self, path: str) -> None:
        cur = ""
        for part in path.strip("/").split("/")[:-1]:
            parent = cur or "/"
            cur += "/" + part
            if cur not in self.entries or self.entries[cur].kind is not Kind.DIR:
                if cur in self.entries:
                    self._remove(cur)
                self.entries[cur] = _Entry(Kind.DIR, 0, 0o755, -1, 0)
                self.children.setdefault(cur, set())
                self.children.setdefault(parent, set()).add(part)

    def _remove(self, path: str) -> None:
        if path not in self.entries:
            return
        for child in list(self.children.get(path, ())):
            self._remove(path.rstrip("/") + "/" + child)
        self.children.pop(path, None)
        del self.entries[path]
        parent, _, base = path.rpartition("/")
        self.children.get(parent or "/", set()).discard(base)

    # -- ImageFS -------------------------------------------------------------------------------------
    def lstat(self, path: str) -> Stat | None:
        e = self.entries.get(path)
        return Stat(e.kind, e.size, e.mode) if e else None

    def readlink(self, path: str) -> str:
        e = self.entries.get(path)
        if e is None or e.kind is not Kind.LINK:
            raise OSError(f"{path}: not a symlink")
        return e.target

    def listdir(self, path: str) -> list[str]:
        return list(self.children.get(path, ()))

    def read(self, path: str, offset: int, size: int) -> bytes:
        e = self.entries.get(path)
        if e is None or e.kind is not Kind.FILE:
            raise OSError(f"{path}: not a regular file")
        size = max(0, min(size, e.size - offset))
        fh, base = self.layers[e.layer]
        fh.seek(base + e.offset + offset)
        return fh.read(size)

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        for tmp in self._temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


class _Source:
    """Named blobs of an archive: members of an outer tar (seekable windows) or files of a directory."""

    def __init__(self, path: str, is_dir: bool) -> None:
        self.path = path
        self.is_dir = is_dir
        self.fh: IO[bytes] | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if not is_dir:
            try:
                self.fh = open(path, "rb")  # noqa: SIM115 (kept open for the scan, closed by ArchiveFS)
                with tarfile.open(fileobj=self.fh, mode="r:") as tar:
                    for m in tar:
                        self.members[normalize("/" + m.name.lstrip("./")).lstrip("/")] = m
            except (OSError, tarfile.TarError) as err:
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
        return _Window(self.fh, m.offset_data, m.size)

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
        return self.fh, m.offset_data, m.size


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


def open_archive(transport: str, path: str) -> ImageView:
    if not os.path.exists(path):
        raise ImageAccessError(f"{transport}:{path} does not exist", "check the path")
    is_dir = os.path.isdir(path)
    if is_dir != (transport == "oci-dir"):
        want = "a directory (an OCI layout)" if transport == "oci-dir" else "a tar file"
        raise ImageAccessError(f"{transport}:{path} is not {want}",
                               "oci-dir: takes an unpacked OCI layout; docker-archive: and oci-archive: take tar files")
    src = _Source(path, is_dir)
    try:
        layers, config, image_id = _layers_and_config(src, transport)
        if not isinstance(config, dict) or not all(isinstance(x, str) for x in layers):
            raise TypeError("unexpected JSON types")
        cfg = config.get("config") or {}
        raw_env = cfg.get("Env") or []
        if not isinstance(cfg, dict) or not isinstance(raw_env, list) or not all(isinstance(x, str) for x in raw_env):
            raise TypeError("unexpected JSON types in the image config")
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        if src.fh is not None:
            src.fh.close()
        raise ImageAccessError(f"{transport}:{path} has a malformed manifest or config ({err})",
                               "save or copy the image again") from None
    except BaseException:
        if src.fh is not None:
            src.fh.close()
        raise
    fs = ArchiveFS()
    if src.fh is not None:
        fs._files.append(src.fh)
    try:
        for name in layers:
            fh, start, size = src.layer(name)
            if is_dir:
                fs._files.append(fh)
            magic = _head(fh, start)
            if magic.startswith(GZIP):
                fh, start, size = _inflate(fh, start, size, fs)
            elif magic == ZSTD:
                raise ImageAccessError(f"{transport}:{path} has zstd-compressed layers, which this version cannot "
                                       "read", "docker load it and scan it from the daemon")
            fs.add_layer(fh, start, size)
    except BaseException:
        fs.close()  # no open file or inflated temporary layer outlives a failed open
        raise
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw_env)
    image_config = ImageConfig(env=env, working_dir=cfg.get("WorkingDir") or "/",
                               architecture=config.get("architecture") or "amd64", os=config.get("os") or "linux",
                               variant=config.get("variant"), labels=cfg.get("Labels") or {},
                               entrypoint=tuple(cfg.get("Entrypoint") or ()), user=cfg.get("User") or "",
                               onbuild=tuple(cfg.get("OnBuild") or ()))
    view = ImageView(fs, image_config, f"{transport}:{path}", image_id)
    view.notes.append("an image archive is read, not run: libraries[].verified is null "
                      "(docker load it and scan it by name to have its loader check the result)")
    return view


def _inflate(fh: IO[bytes], start: int, size: int, fs: ArchiveFS) -> tuple[IO[bytes], int, int]:
    fd, tmp = tempfile.mkstemp(prefix="ldfix-layer-")
    fs._temps.append(tmp)
    out = os.fdopen(fd, "w+b")
    fs._files.append(out)
    try:
        with gzip.GzipFile(fileobj=_Window(fh, start, size)) as gz:
            shutil.copyfileobj(gz, out, 1 << 20)
    except (OSError, EOFError) as err:
        raise ImageAccessError(f"a gzip layer of the archive is corrupt: {err}", "check the archive") from err
    out.flush()
    return out, 0, out.tell()
