"""What a scan learned about an image's files, kept on disk for the next scan of the same image: the merged
tree of a daemon image's overlay2 layers (every path with its kind, mode, size, layer and host file) or of
a `docker save` archive's uncompressed layer tars (with each member's offset) or of an archive's or OCI
layout's compressed layers (with the byte ranges the stream kept of each file), and, beside it, the library
index built from it and the package metadata read from its site-packages directories.

The key is the image ID (the sha256 of its config, which names every layer's content) together with the
layer directories it was read from, or an archive's real path, size, mtime and inode with its image ID and
layer names, so a key never stands for other content; a snapshot of another format
version, a truncated file or one that does not load is ignored and rewritten. Files are written to a
temporary name next to their final one and renamed, so a reader never sees half a file.

Where: $LDFIX_CACHE_DIR, else $XDG_CACHE_HOME/ldfix, else ~/.cache/ldfix (a `snapshots/` folder, about 75
bytes per file of the image; the least recently used go when it holds more than LDFIX_CACHE_MAX_MB, default
1024). LDFIX_NO_CACHE=1 turns it off. What a snapshot saves: the walk over every layer directory (or the
tar headers, or the inflate of a compressed layer) and the ELF header reads of the index (on the
64,000-file, 6-layer bench image about 0.6 of a first --static scan's 1.0 second)."""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import pickle
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ldfix.image.base import Kind
from ldfix.image.layers import HostFiles, MergedTree, Node, Source, TarFile, TreeReads
from ldfix.image.stream import NOTHING, KeptRanges, Sparse

VERSION = 6  # 6: a host file's node has no loc (its layer root and image path say where it is)
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
    save archive) or ranges a stream kept whole. The rows are grouped by directory and stored as flat columns
    (NUL-terminated names, arrays of numbers, one string each for host paths and link targets with the
    offsets of each row's piece), so that loading makes no object per path: see StoredTree."""
    path = _path(key, "tree")
    if path is None:
        return False
    sources: list[tuple[str, int | str]] = []
    for src in tree.sources:
        if isinstance(src, HostFiles):
            sources.append(("host", src.root))
        elif isinstance(src, TarFile):
            sources.append(("tar", src.base))
        elif isinstance(src, KeptRanges):
            sources.append(("kept", 0))
        else:
            return False
    dirs = list(tree.children)
    first, name_at = array("q", [0]), array("q", [0])
    names: list[str] = []
    nodes: list[Node] = []
    chars = 0
    for d in dirs:
        prefix = "/" if d == "/" else d + "/"
        for name in tree.children[d]:
            node = tree.nodes[prefix + name]
            names.append(name)
            nodes.append(node)
            chars += len(name) + 1
        first.append(len(nodes))
        name_at.append(chars)
    index = {k: i for i, k in enumerate(KINDS)}
    kinds = bytes(index[n.kind] for n in nodes)
    sizes = array("q", (n.size for n in nodes))
    modes = array("i", (n.mode for n in nodes))
    layers = array("i", (n.layer for n in nodes))
    offsets = array("q", (n.loc if isinstance(n.loc, int) else -2 if n.loc is NOTHING else
                          -3 if isinstance(n.loc, Sparse) else -1 for n in nodes))
    sparse = {i: (n.loc.starts, n.loc.data) for i, n in enumerate(nodes)
              if isinstance(n.loc, Sparse) and n.loc is not NOTHING}
    locs, loc_at = _pieces(n.loc if isinstance(n.loc, str) else "" for n in nodes)
    targets, target_at = _pieces(n.target for n in nodes)
    return _write(path, marshal.dumps((
        VERSION, sources, "\0".join(dirs), first.tobytes(), name_at.tobytes(), "".join(n + "\0" for n in names),
        kinds, sizes.tobytes(), modes.tobytes(), layers.tobytes(), offsets.tobytes(), locs, loc_at.tobytes(),
        targets, target_at.tobytes(), sparse)))


def _pieces(texts: Iterable[str]) -> tuple[str, array[int]]:
    """One string of all `texts` and the offset where each starts (one more at the end)."""
    at, joined, n = array("q", [0]), [], 0
    for t in texts:
        joined.append(t)
        n += len(t)
        at.append(n)
    return "".join(joined), at


def load_tree(key: str, fh: IO[bytes] | None = None) -> StoredTree | None:
    """The kept tree; `fh`: the open file a tar-member tree reads from."""
    data = _read(_path(key, "tree"))
    if data is None:
        return None
    try:
        (version, sources, dirs, first, name_at, names, kinds, sizes, modes, layers, offsets, locs, loc_at,
         targets, target_at, sparse) = marshal.loads(data)
        if version != VERSION:
            return None
        if any(kind == "tar" for kind, _ in sources) and fh is None:
            return None
        return StoredTree([HostFiles(base) if kind == "host" else KeptRanges() if kind == "kept"
                           else TarFile(fh, base) for kind, base in sources],  # type: ignore[arg-type]
                          dirs.split("\0"), array("q", first), array("q", name_at), names, kinds,
                          array("q", sizes), array("i", modes), array("i", layers), array("q", offsets),
                          locs, array("q", loc_at), targets, array("q", target_at), sparse)
    except (ValueError, EOFError, TypeError, IndexError):
        return None


class StoredTree(TreeReads):
    """A tree loaded from its snapshot, an ImageFS read lazily: a scan looks at a few thousand of an image's
    paths, so a directory's names are split out of the stored column the first time the directory is looked
    in, and an entry becomes a Node the first time it is asked for. Loading it costs one `split` of the
    directory names, whatever the number of files."""

    def __init__(self, sources: list[Source], dirs: list[str], first: array[int], name_at: array[int], names: str,
                 kinds: bytes, sizes: array[int], modes: array[int], layers: array[int], offsets: array[int],
                 locs: str, loc_at: array[int], targets: str, target_at: array[int],
                 sparse: dict[int, tuple[list[int], list[bytes]]]) -> None:
        rows = len(kinds)
        if not (len(dirs) + 1 == len(first) == len(name_at) and first[-1] == rows == len(sizes) == len(modes)
                == len(layers) == len(offsets) == len(loc_at) - 1 == len(target_at) - 1
                and name_at[-1] == len(names) and loc_at[-1] == len(locs) and target_at[-1] == len(targets)):
            raise ValueError("the snapshot's columns disagree")
        self.sources = sources
        self._dirs = {d: k for k, d in enumerate(dirs)}
        self._first, self._name_at, self._names = first, name_at, names
        self._kinds, self._sizes, self._modes, self._layers, self._offsets = kinds, sizes, modes, layers, offsets
        self._locs, self._loc_at, self._targets, self._target_at = locs, loc_at, targets, target_at
        self._sparse = sparse
        self.measured: dict[str, tuple[int, int]] = {}
        self._listed: dict[str, dict[str, int]] = {}
        self._nodes: dict[str, Node | None] = {"/": Node(Kind.DIR)}

    def _listing(self, directory: str) -> dict[str, int] | None:
        """A directory's names with their rows, or None when it is no directory of the tree."""
        got = self._listed.get(directory)
        if got is None:
            k = self._dirs.get(directory)
            if k is None:
                return None
            a, b, row = self._name_at[k], self._name_at[k + 1], self._first[k]
            got = dict(zip(self._names[a:b - 1].split("\0"), range(row, self._first[k + 1]), strict=True)) \
                if b > a else {}
            self._listed[directory] = got
        return got

    def node(self, path: str) -> Node | None:
        try:
            return self._nodes[path]
        except KeyError:
            pass
        parent, _, name = path.rpartition("/")
        listing = None if parent.endswith("/") else self._listing(parent or "/")  # "//x" is no tree path
        row = None if listing is None else listing.get(name)
        node = None if row is None else self._node(row, path)
        self._nodes[path] = node
        return node

    def _node(self, i: int, path: str) -> Node:
        offset = self._offsets[i]
        loc: object = offset if offset >= 0 else NOTHING if offset == -2 else (
            Sparse(list(zip(*self._sparse[i], strict=True))) if offset == -3 else
            self._locs[self._loc_at[i]:self._loc_at[i + 1]] or None)
        return Node(KINDS[self._kinds[i]], self._sizes[i], self._modes[i], self._layers[i], loc,
                    self._targets[self._target_at[i]:self._target_at[i + 1]])

    def names(self, path: str) -> Iterable[str]:
        listing = self._listing(path)
        return () if listing is None else listing.keys()


def save_data(key: str, what: str, value: Any) -> None:
    """Keep one more thing a scan learnt from the image's files beside its tree (`what`: `index`, `dists`)."""
    path = _path(key, what)
    if path is not None:
        _write(path, pickle.dumps((VERSION, value), protocol=pickle.HIGHEST_PROTOCOL))


def load_data(key: str, what: str) -> Any:
    """What `save_data` kept, or None (none kept, another format version, or unreadable)."""
    data = _read(_path(key, what))
    if data is None:
        return None
    try:
        version, value = pickle.loads(data)  # written by this program into the user's own cache
    except Exception:
        return None
    return value if version == VERSION else None
