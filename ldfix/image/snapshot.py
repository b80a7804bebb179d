"""What a scan learned about an image's files, kept on disk for the next scan of the same image: the merged
tree of a daemon image's overlay2 layers (every path with its kind, mode, size, layer and host file) or of
a `docker save` archive's uncompressed layer tars (with each member's offset), and, beside it, the library
index built from it.

The key is the image ID (the sha256 of its config, which names every layer's content) together with the
layer directories it was read from, or an archive's real path, size, mtime and inode with its image ID and
layer names, so a key never stands for other content; a snapshot of another format
version, a truncated file or one that does not load is ignored and rewritten. Files are written to a
temporary name next to their final one and renamed, so a reader never sees half a file.

Where: $LDFIX_CACHE_DIR, else $XDG_CACHE_HOME/ldfix, else ~/.cache/ldfix (a `snapshots/` folder, about 100
bytes per file of the image). LDFIX_NO_CACHE=1 turns it off. What a snapshot saves: the walk over every layer
directory and the ELF header reads of the index (on a 64,000-file, 6-layer image about 1.2 of 1.9 seconds)."""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import pickle
from pathlib import Path
from typing import IO, Any

from ldfix.image.base import Kind
from ldfix.image.layers import HostFiles, MergedTree, Node, TarFile

VERSION = 2
KINDS = list(Kind)


def cache_dir() -> Path | None:
    if os.environ.get("LDFIX_NO_CACHE") == "1":
        return None
    base = os.environ.get("LDFIX_CACHE_DIR")
    if base:
        return Path(base) / "snapshots"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ldfix" / "snapshots"


def key_for(image_id: str, layer_dirs: list[str]) -> str:
    h = hashlib.sha256(f"{VERSION}\0{image_id}\0".encode())
    for d in layer_dirs:
        h.update(d.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _path(key: str, what: str) -> Path | None:
    d = cache_dir()
    return None if d is None else d / f"{key}.{what}"


def _write(path: Path, data: bytes) -> bool:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return False


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def file_key(path: str, *more: str) -> str:
    """A key for an image in a file (an archive): its real path, size, modification time and inode, so a
    file written again is another image."""
    st = os.stat(path)
    return key_for(f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}", list(more))


def save_tree(key: str, tree: MergedTree) -> bool:
    """Keep a tree whose files are host files (overlay2) or members of one uncompressed tar file (a docker
    save archive); a tree holding bytes of streamed layers is not kept."""
    path = _path(key, "tree")
    if path is None:
        return False
    sources: list[tuple[str, int]] = []
    for src in tree.sources:
        if isinstance(src, HostFiles):
            sources.append(("host", 0))
        elif isinstance(src, TarFile):
            sources.append(("tar", src.base))
        else:
            return False
    index = {k: i for i, k in enumerate(KINDS)}
    paths, rows = [], []
    for p, n in tree.nodes.items():
        paths.append(p)
        loc = n.loc if isinstance(n.loc, (str, int)) else None
        rows.append((index[n.kind], n.size, n.mode, n.layer, loc, n.target))
    children = {p: list(names) for p, names in tree.children.items()}
    return _write(path, marshal.dumps((VERSION, sources, paths, rows, children)))


def load_tree(key: str, fh: IO[bytes] | None = None) -> MergedTree | None:
    """The kept tree; `fh`: the open file a tar-member tree reads from."""
    data = _read(_path(key, "tree"))
    if data is None:
        return None
    try:
        version, sources, paths, rows, children = marshal.loads(data)
        if version != VERSION or len(paths) != len(rows):
            return None
        if any(kind == "tar" for kind, _ in sources) and fh is None:
            return None
        tree = MergedTree()
        tree.sources = [HostFiles() if kind == "host" else TarFile(fh, base)  # type: ignore[arg-type]
                        for kind, base in sources]
        tree.nodes = _LazyNodes(zip(paths, rows, strict=True))
        tree.children = children  # lists: a loaded tree is only read (listdir, kinds), never changed
    except (ValueError, EOFError, TypeError, IndexError):
        return None
    return tree


class _LazyNodes(dict):  # type: ignore[type-arg]
    """The nodes of a loaded snapshot, each made a Node the first time it is looked up: a scan looks at a
    few thousand of an image's paths, so most rows stay the tuples they were loaded as."""

    def get(self, key: Any, default: Any = None) -> Any:
        v = dict.get(self, key, default)
        return self._node(key, v) if v.__class__ is tuple else v

    def __getitem__(self, key: Any) -> Any:
        v = dict.__getitem__(self, key)
        return self._node(key, v) if v.__class__ is tuple else v

    def _node(self, key: Any, row: tuple[Any, ...]) -> Node:
        k, size, mode, layer, loc, target = row
        node = Node(KINDS[k], size, mode, layer, loc, target)
        dict.__setitem__(self, key, node)
        return node


def save_index(key: str, index: Any) -> None:
    path = _path(key, "index")
    if path is not None:
        _write(path, pickle.dumps((VERSION, index), protocol=pickle.HIGHEST_PROTOCOL))


def load_index(key: str) -> Any:
    data = _read(_path(key, "index"))
    if data is None:
        return None
    try:
        version, index = pickle.loads(data)  # written by this program into the user's own cache
    except Exception:
        return None
    return index if version == VERSION else None
