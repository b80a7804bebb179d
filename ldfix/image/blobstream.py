"""Layer blobs read from a registry front to back: resumed with an HTTP Range request after a dropped
connection, bounded by the stall timeout, sha256-checked (in a second thread, beside the inflate) and, with
`--cache`, copied into the cache as they stream."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from ldfix.errors import ImageAccessError
from ldfix.image.registry import STALL_TIMEOUT, Client, RemoteName

RESUMES = 3
Progress = Callable[[dict[str, Any]], None]


@dataclass
class Endpoint:
    client: Client
    name: RemoteName


class Sink:
    """The sha256 (and the cache copy) of a blob, fed from a second thread: hashlib and file writes release
    the GIL for large buffers, so they run beside the inflate instead of after it, in the order given."""

    def __init__(self, tee: IO[bytes] | None) -> None:
        self.sha = hashlib.sha256()
        self.tee = tee
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ldfix-digest")
        self.pending: list[Future[None]] = []

    def _take(self, data: bytes) -> None:
        self.sha.update(data)
        if self.tee is not None:
            self.tee.write(data)

    def feed(self, data: bytes) -> None:
        self.pending.append(self.pool.submit(self._take, data))
        if len(self.pending) > 64:  # bounded: at most 64 chunks (16 MiB) wait for the hasher
            self.pending.pop(0).result()

    def hexdigest(self) -> str:
        self.close()
        return self.sha.hexdigest()

    def close(self) -> None:
        try:
            for f in self.pending:
                f.result()
        finally:
            self.pending.clear()
            self.pool.shutdown(wait=True)


class Blob:
    """A layer blob read front to back: resumed with Range after a dropped connection, sha256-checked, teed
    into the cache when one is given."""

    def __init__(self, ep: Endpoint, digest: str, size: int | None, progress: Progress | None,
                 tee: IO[bytes] | None) -> None:
        self.ep, self.digest, self.size, self.progress = ep, digest, size, progress
        self.sink = Sink(tee)
        self.pos = 0
        self.resumes = 0
        self.short = digest.split(":")[-1][:12]
        self.resp = self._open()

    def _open(self) -> Any:
        headers = {"Range": f"bytes={self.pos}-"} if self.pos else {}
        resp = self.ep.client.get(f"{self.ep.name.repository}/blobs/{self.digest}", f"the layer {self.short}",
                                  stream=True, headers=headers)
        resp.raw.decode_content = False
        if self.pos and resp.status_code == 200:  # Range ignored: skip what we have
            left = self.pos
            while left:
                got = resp.raw.read(min(left, 1 << 20))
                if not got:
                    break
                left -= len(got)
        return resp

    def read(self, n: int) -> bytes:
        while True:
            data: bytes | None
            try:
                data = bytes(self.resp.raw.read(n))
            except Exception as err:  # urllib3 ProtocolError / ReadTimeoutError, OSError: the connection broke
                data = None
                stalled = "timed out" in str(err).lower() or "timeout" in type(err).__name__.lower()
                failure = (f"no data for {STALL_TIMEOUT:g} s (stalled)" if stalled else
                           f"the connection broke at byte {self.pos} of {self.size} (a truncated transfer)")
            if data:
                self.pos += len(data)
                self.sink.feed(data)
                if self.progress:
                    self.progress({"id": self.short, "status": "Downloading",
                                   "progressDetail": {"current": self.pos, "total": self.size or 0}})
                return data
            if data is not None and (self.size is None or self.pos >= self.size):
                return b""
            if data is not None:
                failure = f"the connection closed at byte {self.pos} of {self.size} (a truncated transfer)"
            if self.resumes >= RESUMES:
                raise ImageAccessError(f"the layer {self.short} of {self.ep.name} could not be read after {RESUMES} "
                                       f"resumed attempts: {failure}",
                                       "check the network and try again")
            self.resumes += 1
            self.resp.close()
            self.resp = self._open()

    def drain(self) -> bool:
        """Read to the end, for a digest verdict on a blob that did not decode; False if the end was not reached."""
        try:
            while self.read(1 << 20):
                pass
        except ImageAccessError:
            return False
        return True

    def verify(self) -> None:
        self.resp.close()
        try:
            digest = self.sink.hexdigest()
        except OSError as err:
            raise ImageAccessError(f"cannot write the layer {self.short} into the cache: {err.strerror or err}",
                                   "free space there, or leave out --cache") from None
        if self.size is not None and self.pos != self.size:
            raise ImageAccessError(f"the layer {self.short} of {self.ep.name} is {self.pos} bytes, not {self.size}",
                                   "the registry sent a truncated blob; try again")
        if "sha256:" + digest != self.digest:
            raise ImageAccessError(f"the layer {self.short} of {self.ep.name} does not match its digest",
                                   "the registry (or a proxy) altered it; try again, or another mirror")
        if self.progress:
            self.progress({"id": self.short, "status": "Download complete"})
