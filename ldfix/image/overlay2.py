"""overlay2 layer directories of a local Docker daemon, merged into one tree: one scandir walk per layer, the
opaque marker read once per directory that a lower layer has too, a 0/0 character device taken as a
whiteout, and a file's size read only when a reader asks (the kind comes from the directory entry itself)."""

from __future__ import annotations

import os
import stat as statmod

from ldfix.image.base import Kind, stat_of
from ldfix.image.layers import HostFiles, MergedTree, Node


def _is_opaque(host_dir: str) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(host_dir, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def add_host_layer(tree: MergedTree, root: str) -> None:
    """Merge one overlay2 layer directory: one scandir walk, and an opaque check only for a directory that
    lower layers have too (elsewhere there is nothing for it to hide). Every regular file of the layer gets
    the same node: where its bytes are follows from the layer and its path, and its size is read only when
    a reader asks (TreeReads.measured)."""
    layer = tree.new_layer(HostFiles(root))
    nodes, children = tree.nodes, tree.children
    FILE, DIR = Kind.FILE, Kind.DIR
    file_node = Node(FILE, -1, 0o644, layer)
    stack = [("/", root, False)]
    while stack:
        path, host, below = stack.pop()
        try:
            with os.scandir(host) as it:
                entries = list(it)
        except OSError:
            continue
        if below and _is_opaque(host):
            tree.make_opaque(path, layer)
        prefix = "/" if path == "/" else path + "/"
        names = children[path]
        for e in entries:
            name = e.name
            full = prefix + name
            try:  # the kind comes from the directory entry itself; only odd files need an lstat
                if e.is_file(follow_symlinks=False):
                    node = file_node
                elif e.is_dir(follow_symlinks=False):
                    node = Node(DIR, 0, 0o755, layer)
                    old = nodes.get(full)
                    stack.append((full, host + "/" + name, old is not None and old.kind is DIR))
                elif e.is_symlink():
                    node = Node(Kind.LINK, 0, 0o777, layer, None, os.readlink(e.path))
                else:
                    st = e.stat(follow_symlinks=False)
                    if statmod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                        tree.remove(full)  # an overlay2 whiteout
                        continue
                    node = Node(stat_of(st).kind, 0, statmod.S_IMODE(st.st_mode), layer)
            except OSError:
                continue
            if full in nodes:
                tree.put_child(path, name, full, node)  # over a lower layer's entry
            else:
                nodes[full] = node
                names.add(name)
                if node.kind is DIR:
                    children[full] = set()


def merge_host_layers(top_first: list[str]) -> MergedTree:
    tree = MergedTree()
    for root in reversed(top_first):
        add_host_layer(tree, root)
    return tree
