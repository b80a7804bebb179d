"""One merge of ordered layers, shared by every source of files: overlay2 layer directories, the layer tars
of `docker save` archives and OCI layouts, streamed registry blobs, and in-memory trees (tests, fix overlays).

Layers are applied bottom first into one tree held in memory. A whiteout removes a lower entry (`.wh.NAME` in
a tar, a 0/0 character device in an overlay2 directory); an opaque directory (`.wh..wh..opq`, or the
`trusted.overlay.opaque` xattr, read once per directory of the layer that has it) hides everything lower
layers put below it, but not what its own layer adds. After the merge every lookup is a dict access: no
layer is walked again and no xattr is read per lookup.

A node knows where its bytes are through a `Source` (one per layer) and a location in it: an offset in a tar
file, bytes held in memory, kept ranges of a stream, or none for a host file (its layer's root and its image
path say where it is, so all of a layer's host files can share one node)."""

from __future__ import annotations

import os
import re
import stat as statmod
from collections.abc import Iterable
from typing import IO, Protocol

from ldfix.image import tarstream
from ldfix.image.base import Kind, Stat
from ldfix.image.pathwalk import normalize


class Source(Protocol):
    def read(self, loc: object, offset: int, size: int) -> bytes: ...


class HostFiles:
    """Files of a directory on this machine (overlay2 layers): a file's node has no `loc`; its bytes are at
    the layer's `root` followed by its image path, which is what `read` is given. Its size and mode are read
    when first asked for (`measure`): most of an image's files never are, so the walk makes one shared node
    for all of a layer's files instead of one each."""

    def __init__(self, root: str = "") -> None:
        self.root = root

    def read(self, loc: object, offset: int, size: int) -> bytes:
        assert isinstance(loc, str)
        fd = os.open(self.root + loc, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def measure(self, path: str) -> tuple[int, int]:
        """(size, permission bits) of the file at image path `path`; size 0 when it cannot be read."""
        try:
            st = os.lstat(self.root + path)
        except OSError:
            return 0, 0o644
        return st.st_size, statmod.S_IMODE(st.st_mode)


class TarFile:
    """Members of an uncompressed tar inside a file: `loc` is the member data's offset from `base`."""

    def __init__(self, fh: IO[bytes], base: int = 0) -> None:
        self.fh = fh
        self.base = base

    def read(self, loc: object, offset: int, size: int) -> bytes:
        assert isinstance(loc, int)
        self.fh.seek(self.base + loc + offset)
        return self.fh.read(size)


class Kept:
    """Bytes kept in memory (in-memory trees): `loc` is the file's bytes."""

    def read(self, loc: object, offset: int, size: int) -> bytes:
        assert isinstance(loc, bytes)
        return loc[offset:offset + size]


class Node:
    __slots__ = ("kind", "layer", "loc", "mode", "size", "target")

    def __init__(self, kind: Kind, size: int = 0, mode: int = 0o755, layer: int = -1, loc: object = None,
                 target: str = "") -> None:
        self.kind = kind
        self.size = size
        self.mode = mode
        self.layer = layer  # index of the layer (and its Source) that put it there; -1: implied parent
        self.loc = loc
        self.target = target  # a symlink's target


def _split(path: str) -> tuple[str, str]:
    parent, _, base = path.rpartition("/")
    return parent or "/", base


def _join(directory: str, name: str) -> str:
    return "/" + name if directory == "/" else directory + "/" + name


class TreeReads:
    """The ImageFS calls of a merged tree, over its `node` (the entry at a path) and `names` (a directory's
    entries): a tree being built (MergedTree) and a tree loaded from a snapshot (snapshot.StoredTree).

    A node of size -1 is a host file whose size is read when first asked for (HostFiles.measure), and kept
    in `measured` by path: the node itself may be shared by every file of its layer."""

    sources: list[Source]
    measured: dict[str, tuple[int, int]]

    def _size_mode(self, path: str, n: Node) -> tuple[int, int]:
        if n.size >= 0:
            return n.size, n.mode
        got = self.measured.get(path)
        if got is None:
            src = self.sources[n.layer]
            got = src.measure(path) if isinstance(src, HostFiles) else (0, n.mode)
            self.measured[path] = got
        return got

    def node(self, path: str) -> Node | None:
        raise NotImplementedError

    def names(self, path: str) -> Iterable[str]:
        raise NotImplementedError

    def lstat(self, path: str) -> Stat | None:
        n = self.node(path)
        if n is None:
            return None
        if n.size < 0:
            size, mode = self._size_mode(path, n)
            return Stat(n.kind, size, mode)
        return Stat(n.kind, n.size, n.mode)

    def readlink(self, path: str) -> str:
        n = self.node(path)
        if n is None or n.kind is not Kind.LINK:
            raise OSError(f"{path}: not a symlink")
        return n.target

    def listdir(self, path: str) -> list[str]:
        return list(self.names(path))

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        node = self.node
        return [(name, node(_join(path, name)).kind) for name in self.names(path)]  # type: ignore[union-attr]

    def read(self, path: str, offset: int, size: int) -> bytes:
        n = self.node(path)
        if n is None or n.kind is not Kind.FILE:
            raise OSError(f"{path}: not a regular file")
        length = n.size if n.size >= 0 else self._size_mode(path, n)[0]
        size = max(0, min(size, length - offset))
        if size == 0:
            return b""
        return self.sources[n.layer].read(path if n.loc is None else n.loc, offset, size)


class MergedTree(TreeReads):
    """The merged filesystem; an ImageFS. Build it with the `add_*` calls of one layer after another."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {"/": Node(Kind.DIR)}
        self.children: dict[str, set[str]] = {"/": set()}
        self.sources: list[Source] = []
        self.measured: dict[str, tuple[int, int]] = {}

    # -- building ------------------------------------------------------------------------------------
    def new_layer(self, source: Source) -> int:
        self.sources.append(source)
        return len(self.sources) - 1

    def put(self, path: str, node: Node) -> None:
        """Add an entry; a directory over a directory keeps what is below it (overlay semantics)."""
        parent, base = _split(path)
        self.put_at(parent, base, path, node)

    def put_at(self, parent: str, name: str, path: str, node: Node) -> None:
        """`put` with the path already split into its parent and name (a layer's members mostly land in a
        directory the tree has: only otherwise are the directories above made)."""
        above = self.nodes.get(parent)
        if above is None or above.kind is not Kind.DIR:
            self._make_dir(parent)
        self.put_child(parent, name, path, node)

    def put_child(self, parent: str, name: str, path: str, node: Node) -> None:
        """`put` for a walk that already made `parent` a directory of this tree (no parent checks)."""
        old = self.nodes.get(path)
        if old is not None:
            if node.kind is Kind.DIR and old.kind is Kind.DIR:
                self.nodes[path] = node
                return
            self.remove(path)
        self.nodes[path] = node
        self.children[parent].add(name)
        if node.kind is Kind.DIR:
            self.children.setdefault(path, set())

    def hard_link(self, path: str, target: str, layer: int) -> None:
        """A tar hard link: the same bytes as `target`, which an earlier member of the layer (or a lower
        layer) put there. A link to nothing is dropped, as Docker's extraction would fail on it."""
        found = self.nodes.get(target)
        if found is not None and found.kind is not Kind.DIR:
            self.put(path, Node(found.kind, found.size, found.mode, found.layer, found.loc, found.target))

    def remove(self, path: str) -> None:
        node = self.nodes.pop(path, None)
        if node is None:
            return
        for child in self.children.pop(path, ()):
            self.remove(_join(path, child))
        parent, base = _split(path)
        self.children.get(parent, set()).discard(base)

    def make_opaque(self, path: str, layer: int) -> None:
        """Hide what layers below `layer` put under `path`; keep what `layer` itself put there."""
        for child in list(self.children.get(path, ())):
            full = _join(path, child)
            node = self.nodes[full]
            if node.layer == layer and node.kind is Kind.DIR:
                self.make_opaque(full, layer)
            elif node.layer != layer:
                self.remove(full)

    def _make_dir(self, directory: str) -> None:
        """Make `directory` and those above it directories of the tree, as an extraction would."""
        above = self.nodes.get(directory)
        if (above is not None and above.kind is Kind.DIR) or directory == "/":
            return
        gp, name = _split(directory)
        self._make_dir(gp)
        if above is not None:  # a file or link where a later layer has a directory
            self.remove(directory)
        self.nodes[directory] = Node(Kind.DIR)
        self.children.setdefault(directory, set())
        self.children[gp].add(name)

    def node(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def names(self, path: str) -> Iterable[str]:
        return self.children.get(path, ())

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        nodes, prefix = self.nodes, "/" if path == "/" else path + "/"
        return [(name, nodes[prefix + name].kind) for name in self.children.get(path, ())]


# -- layer tars (archives, OCI layouts, streams) ------------------------------------------------------

_PLAIN = re.compile(r"^(?:\./)?((?:[^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)(?:/(?:[^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))*)/?$")


def member_path(name: str) -> str:
    """The image path of a tar member name: `./usr/lib/` is /usr/lib. A name with no empty component and no
    component starting with a dot is taken as it is (string tests, no split); one with a hidden name is
    checked by one regex; only one with `..`, `.` or `//` is normalized component by component."""
    plain = name[2:] if name.startswith("./") else name
    if plain.endswith("/"):
        plain = plain[:-1]
    if plain and plain[0] != "/" and plain[0] != "." and "/." not in plain and "//" not in name:
        return "/" + plain
    m = _PLAIN.match(name)
    return "/" + m.group(1) if m is not None else normalize("/" + name)


def apply_member(tree: MergedTree, m: tarstream.Member, layer: int, loc: object, path: str | None = None) -> None:
    """Apply one member of layer `layer`; `loc` locates its data in that layer's Source. `path`: the member's
    image path when the caller has it already."""
    path = path if path is not None else member_path(m.name)
    parent, _, base = path.rpartition("/")
    if not parent:
        if not base:
            return  # the root itself
        parent = "/"
    if base.startswith(".wh."):
        if base == ".wh..wh..opq":
            tree.make_opaque(parent, layer)
        else:
            tree.remove(_join(parent, base[4:]))
        return
    kind = m.type
    if kind == tarstream.REG:
        node = Node(Kind.FILE, m.size, m.mode, layer, loc)
    elif kind == tarstream.DIR:
        node = Node(Kind.DIR, 0, m.mode, layer)
    elif kind == tarstream.SYM:
        node = Node(Kind.LINK, 0, m.mode, layer, None, m.linkname)
    elif kind == tarstream.LNK:
        tree.hard_link(path, member_path(m.linkname), layer)
        return
    else:  # devices, fifos: present, never read
        node = Node(Kind.OTHER, 0, m.mode, layer)
    tree.put_at(parent, base, path, node)


def add_tar_layer(tree: MergedTree, fh: IO[bytes], start: int, size: int) -> None:
    """Merge an uncompressed layer tar lying at [start, start+size) of a seekable file: headers only."""
    layer = tree.new_layer(TarFile(fh, start))
    for m in tarstream.members(tarstream.file_reader(fh, start, start + size)):
        apply_member(tree, m, layer, m.offset)
