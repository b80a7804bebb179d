"""What a scan learned about an image's files, kept on disk for the next scan of the same image: the merged
tree of a daemon image's overlay2 layers (every path with its kind, mode, size, layer and host file) or of
a `docker save` archive's uncompressed layer tars (with each member's offset) or of an archive's or OCI
layout's compressed layers (with the byte ranges the stream kept of each file), and, beside it, the library
index built from it.

The key is the image ID (the sha256 of its config, which names every layer's content) together with the
layer directories it was read from, or an archive's real path, size, mtime and inode with its image ID and
layer names, so a key never stands for other content; a snapshot of another format
version, a truncated file or one that does not load is ignored and rewritten. Files are written to a
temporary name next to their final one and renamed, so a reader never sees half a file.

Where: $LDFIX_CACHE_DIR, else $XDG_CACHE_HOME/ldfix, else ~/.cache/ldfix (a `snapshots/` folder, about 100
bytes per file of the image; the least recently used go when it holds more than LDFIX_CACHE_MAX_MB, default
1024). LDFIX_NO_CACHE=1 turns it off. What a snapshot saves: the walk over every layer
directory and the ELF header reads of the index (on a 64,000-file, 6-layer image about 1.2 of 1.9 seconds)."""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import pickle
from array import array
from pathlib import Path
from typing import IO, Any

from ldfix.image.base import Kind
from ldfix.image.layers import HostFiles, MergedTree, Node, TarFile
from ldfix.image.stream import NOTHING, KeptRanges, Sparse

VERSION = 4
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
            prune()
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return False


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # last used: what pruning keeps
    return data


def prune(limit_mb: float | None = None) -> None:
    """Remove the least recently used snapshots while the folder holds more than LDFIX_CACHE_MAX_MB
    (default 1024)."""
    d = cache_dir()
    if d is None:
        return
    try:
        limit = float(limit_mb if limit_mb is not None else os.environ.get("LDFIX_CACHE_MAX_MB", "1024")) * 1e6
        files = sorted((e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(d) if e.is_file())
    except (OSError, ValueError):
        return
    total = sum(size for _, size, _ in files)
    for _, size, path in files:
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            os.unlink(path)
            total -= size


def file_key(path: str, *more: str) -> str:
    """A key for an image in a file (an archive): its real path, size, modification time and inode, so a
    file written again is another image."""
    st = os.stat(path)
    return key_for(f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}", list(more))


def save_tree(key: str, tree: MergedTree) -> bool:
    """Keep a tree whose files are host files (overlay2) or members of one uncompressed tar file (a docker
    save archive); a tree holding bytes of streamed layers is not kept. The columns are stored flat (one
    string of NUL-separated paths, arrays of numbers) so that loading makes no object per path."""
    path = _path(key, "tree")
    if path is None:
        return False
    sources: list[tuple[str, int]] = []
    for src in tree.sources:
        if isinstance(src, HostFiles):
            sources.append(("host", 0))
        elif isinstance(src, TarFile):
            sources.append(("tar", src.base))
        elif isinstance(src, KeptRanges):
            sources.append(("kept", 0))
        else:
            return False
    index = {k: i for i, k in enumerate(KINDS)}
    nodes = list(tree.nodes.values())
    kinds = bytes(index[n.kind] for n in nodes)
    sizes = array("q", (n.size for n in nodes))
    modes = array("i", (n.mode for n in nodes))
    layers = array("i", (n.layer for n in nodes))
    offsets = array("q", (n.loc if isinstance(n.loc, int) else -2 if n.loc is NOTHING else
                          -3 if isinstance(n.loc, Sparse) else -1 for n in nodes))
    sparse = {i: (n.loc.starts, n.loc.data) for i, n in enumerate(nodes)
              if isinstance(n.loc, Sparse) and n.loc is not NOTHING}
    locs = "\0".join(n.loc if isinstance(n.loc, str) else "" for n in nodes)
    targets = "\0".join(n.target for n in nodes)
    children = {p: "\0".join(names) for p, names in tree.children.items()}
    return _write(path, marshal.dumps((VERSION, sources, "\0".join(tree.nodes), kinds, sizes.tobytes(),
                                       modes.tobytes(), layers.tobytes(), offsets.tobytes(), locs, targets,
                                       children, sparse)))


def load_tree(key: str, fh: IO[bytes] | None = None) -> MergedTree | None:
    """The kept tree; `fh`: the open file a tar-member tree reads from."""
    data = _read(_path(key, "tree"))
    if data is None:
        return None
    try:
        (version, sources, paths, kinds, sizes, modes, layers, offsets, locs, targets, children,
         sparse) = marshal.loads(data)
        if version != VERSION:
            return None
        if any(kind == "tar" for kind, _ in sources) and fh is None:
            return None
        cols = _Columns(kinds, sizes, modes, layers, offsets, locs.split("\0"), targets.split("\0"), sparse)
        names = paths.split("\0")
        if not len(names) == len(kinds) == len(cols.sizes) == len(cols.locs) == len(cols.targets):
            return None
        tree = MergedTree()
        tree.sources = [HostFiles() if kind == "host" else KeptRanges() if kind == "kept"
                        else TarFile(fh, base) for kind, base in sources]  # type: ignore[arg-type]
        tree.nodes = _LazyNodes(zip(names, range(len(names)), strict=True), cols)
        tree.children = _LazyChildren(children)
    except (ValueError, EOFError, TypeError, IndexError):
        return None
    return tree


class _Columns:
    def __init__(self, kinds: bytes, sizes: bytes, modes: bytes, layers: bytes, offsets: bytes, locs: list[str],
                 targets: list[str], sparse: dict[int, tuple[list[int], list[bytes]]]) -> None:
        self.sparse = sparse
        self.kinds = kinds
        self.sizes, self.modes = array("q", sizes), array("i", modes)
        self.layers, self.offsets = array("i", layers), array("q", offsets)
        self.locs, self.targets = locs, targets


class _LazyNodes(dict):  # type: ignore[type-arg]
    """The nodes of a loaded snapshot, each made a Node the first time it is looked up: a scan looks at a
    few thousand of an image's paths, so most stay the row number they were loaded as."""

    def __init__(self, rows: Any, cols: _Columns) -> None:
        super().__init__(rows)
        self.cols = cols

    def get(self, key: Any, default: Any = None) -> Any:
        v = dict.get(self, key, default)
        return self._node(key, v) if v.__class__ is int else v

    def __getitem__(self, key: Any) -> Any:
        v = dict.__getitem__(self, key)
        return self._node(key, v) if v.__class__ is int else v

    def _node(self, key: Any, i: int) -> Node:
        c = self.cols
        offset = c.offsets[i]
        loc: object = offset if offset >= 0 else NOTHING if offset == -2 else (
            Sparse(list(zip(*c.sparse[i], strict=True))) if offset == -3 else (c.locs[i] or None))
        node = Node(KINDS[c.kinds[i]], c.sizes[i], c.modes[i], c.layers[i], loc, c.targets[i])
        dict.__setitem__(self, key, node)
        return node


class _LazyChildren(dict):  # type: ignore[type-arg]
    """A directory's entries, split out of their stored string the first time the directory is listed."""

    def get(self, key: Any, default: Any = None) -> Any:
        v = dict.get(self, key, default)
        if v.__class__ is str:
            v = v.split("\0") if v else []
            dict.__setitem__(self, key, v)
        return v


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
