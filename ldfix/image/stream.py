"""Layers read as one stream: a gzip, zstd or plain tar, read once from front to back (a registry blob, a
compressed layer in an archive), merged into the tree while only what the scan reads is kept in memory.

Which bytes of a file are kept is a `KeepPolicy`'s call (the loader layer supplies it: ELF headers, dynamic
sections and the strings they name, ld.so.conf, ld.so.cache, package metadata). The policy reads a file
through a function that raises `NotKept(offset, size)` for bytes not seen yet; the stream then moves on to
that offset and buffers from there, so data behind the last wanted byte is never held. What the policy read
is what is kept, exactly: a later read of the same file through the tree gets the same bytes, and a read of
anything else raises `NotKept` (an OSError) instead of returning wrong bytes."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ldfix.image import tarstream
from ldfix.image.decode import Decoder
from ldfix.image.layers import MergedTree, apply_member, member_path

if TYPE_CHECKING:
    from concurrent.futures import Future

LOOKAHEAD = 1 << 16  # bytes buffered at a wanted offset
FIRST = 1 << 16  # bytes of every file shown to the policy


class NotKept(OSError):
    """A read of bytes the stream did not keep (or has not reached yet)."""

    def __init__(self, offset: int, size: int) -> None:
        super().__init__(f"bytes {offset}+{size} were not kept from the layer stream")
        self.offset = offset
        self.size = size


class Sparse:
    """The kept ranges of one file: (start, bytes), sorted and disjoint."""

    __slots__ = ("data", "starts")

    def __init__(self, ranges: list[tuple[int, bytes]]) -> None:
        self.starts = [s for s, _ in ranges]
        self.data = [d for _, d in ranges]

    def read(self, offset: int, size: int) -> bytes:
        i = bisect.bisect_right(self.starts, offset) - 1
        if i < 0 or offset >= self.starts[i] + len(self.data[i]):
            raise NotKept(offset, size)
        at = offset - self.starts[i]
        return self.data[i][at:at + size]


NOTHING = Sparse([])  # what is kept of the files a scan never reads (shared: Sparse is never changed)


class KeptRanges:
    """A tree Source for streamed layers: `loc` is a Sparse."""

    def read(self, loc: object, offset: int, size: int) -> bytes:
        assert isinstance(loc, Sparse)
        return loc.read(offset, size)


class KeepPolicy(Protocol):
    def whole(self, path: str, size: int) -> bool:
        """Keep every byte (small configuration and metadata files)."""
        ...

    def head(self, path: str, size: int, first: bytes) -> int:
        """Given the first bytes (first the first 4, then up to FIRST), how many leading bytes to buffer before
        `read` is called; 0 on the first 4: keep nothing of this file."""
        ...

    def ahead(self, path: str, size: int, first: bytes) -> list[tuple[int, int]]:
        """Given the first bytes, byte ranges further on to buffer as the stream passes them, because `read`
        may want them only after it has read something behind them."""
        ...

    def read(self, path: str, size: int, read: Callable[[int, int], bytes]) -> None:
        """Read what the scan will read of the file; `read` raises NotKept for bytes further on."""
        ...


class ScanAll:
    """Keeps every byte: for callers that did not say what they read (tests, tools)."""

    def whole(self, path: str, size: int) -> bool:
        return True

    def head(self, path: str, size: int, first: bytes) -> int:
        return size

    def ahead(self, path: str, size: int, first: bytes) -> list[tuple[int, int]]:
        return []

    def read(self, path: str, size: int, read: Callable[[int, int], bytes]) -> None:
        return None


def _coalesce(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class _Pieces:
    """Buffered stretches of one member, and a record of what the policy read of them. A read may run on
    into a stretch that starts where its own ends."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, bytes]] = []
        self.spans: list[tuple[int, int]] = []

    def _bytes(self, offset: int, size: int) -> bytes | None:
        for start, data in self.pieces:
            if start <= offset < start + len(data):
                got = data[offset - start:offset - start + size]
                end = start + len(data)
                while len(got) < size:
                    after = next((d for s, d in self.pieces if s == end and d), None)
                    if after is None:
                        break
                    got += after[:size - len(got)]
                    end += len(after)
                return got
        return None

    def read(self, offset: int, size: int) -> bytes:
        got = self._bytes(offset, size)
        if got is None:
            raise NotKept(offset, size)
        self.spans.append((offset, offset + len(got)))
        return got

    def kept(self) -> Sparse:
        ranges = []
        for start, end in _coalesce(self.spans):
            got = self._bytes(start, end - start)
            if got is not None:
                ranges.append((start, bytes(got)))
        return Sparse(ranges)


def _keep(policy: KeepPolicy, path: str, m: tarstream.Member, r: tarstream.Reader) -> tuple[Sparse, int, bool]:
    """(what is kept of the member, how many of its bytes were read, whether the policy got all it asked)."""
    size = m.size
    if size == 0:
        return NOTHING, 0, True
    if policy.whole(path, size):
        return Sparse([(0, r.exact(size))]), size, True
    magic = r.exact(min(4, size))
    if policy.head(path, size, magic) == 0:  # most files: four bytes say the scan never reads them
        return NOTHING, len(magic), True
    first = magic + r.exact(min(FIRST, size) - len(magic))
    want = min(policy.head(path, size, first), size)
    pieces = _Pieces()
    pos = len(first)
    pieces.pieces.append((0, first + r.exact(want - pos) if want > pos else first))
    pos = max(pos, want)
    if want == 0:
        return Sparse([]), pos, True
    ahead = sorted((start, min(end, size)) for start, end in policy.ahead(path, size, first) if end > pos)

    def advance(to: int) -> int:
        """Move from `pos` to `to`, buffering the stretches of `ahead` on the way instead of skipping them."""
        at = pos
        for start, end in ahead:
            if end <= at or start >= to:
                continue
            if start > at:
                r.skip(start - at)
                at = start
            stop = min(end, to)
            pieces.pieces.append((at, r.exact(stop - at)))
            at = stop
        r.skip(to - at)
        return to

    for _ in range(64):
        pieces.spans.clear()
        try:
            policy.read(path, size, pieces.read)
            return pieces.kept(), pos, True
        except NotKept as nk:
            if nk.offset < pos or nk.offset >= size:
                return pieces.kept(), pos, nk.offset >= size
            pos = advance(nk.offset)
            take = min(max(nk.size, LOOKAHEAD), size - nk.offset)
            pieces.pieces.append((nk.offset, r.exact(take)))
            pos = nk.offset + take
    return pieces.kept(), pos, False


class StreamedLayer(NamedTuple):
    """One streamed layer, read through: each member in order with its image path and what the policy kept of
    it (files; None for other members), and the paths of files it wanted more of than one pass could keep."""

    members: list[tuple[tarstream.Member, str, Sparse | None]]
    short: list[str]


class Cancelled(Exception):
    """The read of a layer was stopped (another layer of the image failed first)."""


def stoppable(read: Callable[[int], bytes], stop: threading.Event) -> Callable[[int], bytes]:
    """`read` that raises Cancelled once `stop` is set: a layer thread told to stop gives up at its next read
    of the source (at most one chunk later), not after the member it is in."""
    def reader(n: int) -> bytes:
        if stop.is_set():
            raise Cancelled()
        return read(n)

    return reader


READERS = 2  # layers read at once, each in a thread of its own (this machine class has two cores)


@contextmanager
def reading_ahead(jobs: dict[int, Callable[[threading.Event], StreamedLayer]]
                  ) -> Iterator[dict[int, Future[StreamedLayer]]]:
    """Run each job (the read of one layer, given a stop event) READERS at a time in threads, ahead of a
    merge that takes their results in layer order; yields their futures by layer index. Inflating, hashing
    and sockets hold no lock, so two layers stream on two cores. On leaving, the event is set and the
    threads are joined: after a failure (or an interrupt) the other reads give up at their next read."""
    if not jobs:
        yield {}
        return
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="ldfix-layer")
    try:
        yield {i: pool.submit(job, stop) for i, job in jobs.items()}
    finally:
        stop.set()  # a no-op when every layer was read
        pool.shutdown(wait=True, cancel_futures=True)


def read_stream_layer(decoder: Decoder, policy: KeepPolicy, stop: threading.Event | None = None) -> StreamedLayer:
    """Read one streamed layer tar through, keeping what `policy` asks of each file. It touches no tree, so
    several layers can be read at once, each in a thread of its own (their inflating runs on other cores),
    and merged in order after (merge_stream_layer). `stop` set: raise Cancelled at the next member (a source
    wrapped in `stoppable` stops sooner, at its next read)."""
    members: list[tuple[tarstream.Member, str, Sparse | None]] = []
    short: list[str] = []

    def on_data(m: tarstream.Member, r: tarstream.Reader) -> int:
        path = members[-1][1]
        sparse, used, complete = _keep(policy, path, m, r)
        members[-1] = (m, path, sparse)
        if not complete:
            short.append(path)
        return used

    reader = tarstream.Reader(decoder.read, decoder.skip)
    try:
        for m in tarstream.members(reader, on_data):
            if stop is not None and stop.is_set():
                raise Cancelled()
            members.append((m, member_path(m.name), None))
        decoder.finish()
    finally:
        decoder.close()  # a decoder reading ahead stops its thread
    return StreamedLayer(members, short)


def merge_stream_layer(tree: MergedTree, layer: StreamedLayer) -> list[str]:
    """Apply a layer read by read_stream_layer over the layers below it; returns the layer's short paths."""
    index = tree.new_layer(KeptRanges())
    for m, path, sparse in layer.members:
        apply_member(tree, m, index, sparse, path)
    return layer.short


def add_stream_layer(tree: MergedTree, decoder: Decoder, policy: KeepPolicy) -> list[str]:
    """Read one streamed layer tar and merge it; the paths of files the policy wanted more of than one pass
    could keep."""
    return merge_stream_layer(tree, read_stream_layer(decoder, policy))
