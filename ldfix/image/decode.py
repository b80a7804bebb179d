"""The decompressed bytes of a layer blob read front to back: gzip (several members too), zstd (several frames
too) or a plain tar, from any `read(n)` source, with `skip` that never holds what it skips."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from ldfix.image import tarstream

GZIP = b"\x1f\x8b"
ZSTD = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20  # compressed bytes asked of the source at a time
OUT = 1 << 22  # most decompressed bytes produced per step


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class LayerStreamError(Exception):
    """A corrupt or truncated compressed stream."""


class Decoder:
    """The decompressed bytes of a raw byte source, read front to back: gzip (several members too), zstd
    (several frames too) or none. Every compressed byte goes through `digest` when one is given."""

    def __init__(self, raw: Callable[[int], bytes], digest: Digest | None = None) -> None:
        self._raw = raw
        self.digest = digest
        self.compressed = 0
        first = self._pull()
        self.kind = "gzip" if first.startswith(GZIP) else "zstd" if first.startswith(ZSTD) else "tar"
        self._pending = first
        self._d: _Decomp | None = _Decomp.new(self.kind)
        self._buf = b""
        self._pos = 0
        self.eof = False

    def _pull(self) -> bytes:
        data = self._raw(CHUNK)
        self.compressed += len(data)
        if self.digest is not None and data:
            self.digest.update(data)
        return data

    def _step(self) -> bytes:
        """The next stretch of output; b"" at the end."""
        while not self.eof:
            d = self._d
            if d is None:
                data, self._pending = self._pending or self._pull(), b""
                if not data:
                    self.eof = True
                return data
            if d.needs_input:
                data, self._pending = self._pending or self._pull(), b""
                if not data:
                    if not d.eof:
                        raise LayerStreamError(f"the {self.kind} stream ends early (truncated layer)")
                    self.eof = True
                    return b""
            else:
                data = b""
            out = d.feed(data, OUT)
            if d.eof:
                rest = d.unused
                if rest.strip(b"\0"):
                    self._d = _Decomp.new(self.kind)  # another member / frame follows
                    self._pending = rest
                elif not rest:
                    tail = self._pull()
                    while tail and not tail.strip(b"\0"):
                        tail = self._pull()
                    if tail:
                        self._d = _Decomp.new(self.kind)
                        self._pending = tail
                    else:
                        self.eof = True
                else:
                    self._drain()
            if out:
                return out
        return b""

    def _drain(self) -> None:
        while self._pull():
            pass
        self.eof = True

    def read(self, n: int) -> bytes:
        if self._pos + n <= len(self._buf):
            self._pos += n
            return self._buf[self._pos - n:self._pos]
        parts = [self._buf[self._pos:]]
        have = len(parts[0])
        self._buf, self._pos = b"", 0
        while have < n:
            out = self._step()
            if not out:
                break
            take = min(len(out), n - have)
            parts.append(out[:take] if take < len(out) else out)
            have += take
            if take < len(out):
                self._buf, self._pos = out, take
        return b"".join(parts)

    def skip(self, n: int) -> None:
        left = len(self._buf) - self._pos
        if n <= left:
            self._pos += n
            return
        n -= left
        self._buf, self._pos = b"", 0
        while n > 0:
            out = self._step()
            if not out:
                raise tarstream.TarError("the tar ends in the middle of a member")
            if len(out) > n:
                self._buf, self._pos = out, n
                return
            n -= len(out)

    def close(self) -> None:
        """Let go of whatever reads ahead (nothing here)."""

    def finish(self) -> None:
        """Read to the end of the raw source (the tar's end blocks and padding), so a digest covers it all."""
        while self._step():
            pass


class _Decomp:
    """zlib and zstd decompressors behind one face."""

    def __init__(self, obj: Any, kind: str) -> None:
        self.obj = obj
        self.kind = kind

    @staticmethod
    def new(kind: str) -> _Decomp | None:
        if kind == "gzip":
            return _Decomp(zlib.decompressobj(wbits=31), kind)
        if kind == "zstd":
            from ldfix.image.zstd import decompressor

            return _Decomp(decompressor(), kind)
        return None

    @property
    def needs_input(self) -> bool:
        return not self.obj.unconsumed_tail if self.kind == "gzip" else bool(self.obj.needs_input)

    @property
    def eof(self) -> bool:
        return bool(self.obj.eof)

    @property
    def unused(self) -> bytes:
        return bytes(self.obj.unused_data)

    def feed(self, data: bytes, limit: int) -> bytes:
        try:
            if self.kind == "gzip":
                return bytes(self.obj.decompress(self.obj.unconsumed_tail + data, limit))
            return bytes(self.obj.decompress(data, limit))
        except Exception as err:  # zlib.error, ZstdError: corrupt input
            raise LayerStreamError(f"the {self.kind} stream is corrupt: {err}") from None



class PrefetchingDecoder(Decoder):
    """A Decoder whose reading and inflating run in a thread ahead of the tar reader: zlib, zstd, hashlib and
    socket reads release the GIL, so on two cores the per-member Python work of the layer merge runs beside
    the inflate instead of after it. At most DEPTH stretches of output wait (DEPTH x 4 MiB).

    While it runs, the interpreter's switch interval is SWITCH instead of 5 ms: the inflating thread wants the
    GIL back after every stretch, and at 5 ms the reader's hold on it ate what the thread saved (the large
    bench layout: 28.6 s with a 5 ms interval, 25.7-26.3 s with 0.2-1 ms, 27.0 s without the thread)."""

    DEPTH = 8
    SWITCH = 0.0005
    _running = 0  # decoders open now; the last one to close restores the interval
    _saved = 0.005
    _lock = threading.Lock()

    def __init__(self, raw: Callable[[int], bytes], digest: Digest | None = None) -> None:
        super().__init__(raw, digest)
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(self.DEPTH)
        self._stop = threading.Event()
        self._done = False
        self._closed = False
        with PrefetchingDecoder._lock:
            if PrefetchingDecoder._running == 0:
                PrefetchingDecoder._saved = sys.getswitchinterval()
                sys.setswitchinterval(self.SWITCH)
            PrefetchingDecoder._running += 1
        self._thread = threading.Thread(target=self._produce, name="ldfix-inflate", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                out = Decoder._step(self)
                self._put(out)
                if not out:
                    return
        except BaseException as err:  # handed to the reader, raised there
            self._put(err)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _step(self) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join()  # bounded: a blocked read ends within the stall timeout, a full queue in 0.2 s
        with PrefetchingDecoder._lock:
            PrefetchingDecoder._running -= 1
            if PrefetchingDecoder._running == 0:
                sys.setswitchinterval(PrefetchingDecoder._saved)
