"""The few Docker Engine API calls a scan makes (inspect an image, create / start / wait for / read / remove a
container, put a file into it), over the daemon's socket, one HTTP/1.1 request per connection.

Why not the docker SDK here: importing it (with requests and urllib3) costs 0.25-0.3 s, as much as the whole
static scan of a small image, and a scan needs a few endpoints; even http.client (which imports the email
package) costs some 40 ms, so one request per connection is written and read here directly. The SDK stays
for what needs its machinery (pulling with progress, builds, `docker save`, TLS and ssh daemons):
`available()` says whether this client can reach the daemon the SDK would use (DOCKER_HOST unset,
`unix://` or plain `tcp://`)."""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any
from urllib.parse import quote, urlencode

from ldfix.errors import DaemonUnreachable

DEFAULT_SOCKET = "/var/run/docker.sock"


class EngineError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("truncated chunked body")
        size = int(body[pos:end].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


def _exchange(sock: socket.socket, method: str, url: str, data: bytes | None, content_type: str
              ) -> tuple[int, bytes]:
    """One HTTP/1.1 request with `Connection: close` and its whole response (status, body)."""
    head = [f"{method} {url} HTTP/1.1", "Host: docker", "Connection: close"]
    if data is not None:
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(data)}"]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (data or b""))
    chunks = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    raw = b"".join(chunks)
    header, sep, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    if not sep or not lines[0].startswith("HTTP/"):
        raise ValueError("not an HTTP response")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in fields:
        body = body[:int(fields["content-length"])]
    return status, body


def _target() -> tuple[str, str] | None:
    """("unix", path) or ("tcp", host:port) of the daemon DOCKER_HOST names; None where TLS or ssh is needed."""
    host = os.environ.get("DOCKER_HOST", "")
    if os.environ.get("DOCKER_TLS_VERIFY") or (os.environ.get("DOCKER_CERT_PATH") and host.startswith("tcp://")):
        return None
    if not host:
        return "unix", DEFAULT_SOCKET
    if host.startswith("unix://"):
        return "unix", host[len("unix://"):] or DEFAULT_SOCKET
    if host.startswith("tcp://"):
        return "tcp", host[len("tcp://"):].rstrip("/")
    return None


def available() -> bool:
    return _target() is not None


class Engine:
    """One daemon. Each call opens its own connection (calls may come from two threads)."""

    def __init__(self, timeout: float | None = 60.0) -> None:
        target = _target()
        if target is None:
            raise ValueError("this daemon needs the docker SDK (TLS or ssh)")
        self.kind, self.address = target
        self.timeout = timeout

    def _socket(self, timeout: float | None) -> socket.socket:
        if self.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.address)
            return sock
        host, _, port = self.address.partition(":")
        return socket.create_connection((host, int(port or 2375)), timeout=timeout)

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             raw: bytes | None = None, content_type: str = "application/json", timeout: float | None = None,
             ok: tuple[int, ...] = (200, 201, 204)) -> tuple[int, bytes]:
        url = path + ("?" + urlencode(query) if query else "")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            sock = self._socket(timeout if timeout is not None else self.timeout)
            try:
                status, payload = _exchange(sock, method, url, data, content_type)
            finally:
                sock.close()
        except (OSError, ValueError) as err:
            where = self.address if self.kind == "tcp" else f"unix://{self.address}"
            raise DaemonUnreachable(f"cannot reach the Docker daemon at {where}: {err}",
                                    "is dockerd running, may you use its socket?") from err
        if status not in ok:
            try:
                message = json.loads(payload).get("message", "")
            except ValueError:
                message = payload.decode("utf-8", "replace")[:300]
            raise EngineError(status, message or f"HTTP {status}")
        return status, payload

    def json(self, method: str, path: str, **kw: Any) -> Any:
        _, payload = self.call(method, path, **kw)
        return json.loads(payload) if payload else None

    # -- the calls a scan makes ------------------------------------------------------------------------
    def inspect_image(self, name: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the daemon does not have it."""
        try:
            return self.json("GET", f"/images/{quote(name, safe='')}/json")  # type: ignore[no-any-return]
        except EngineError as err:
            if err.status == 404:
                return None
            raise

    def create(self, spec: dict[str, Any]) -> str:
        return str(self.json("POST", "/containers/create", body=spec)["Id"])

    def inspect(self, cid: str) -> dict[str, Any]:
        return self.json("GET", f"/containers/{cid}/json")  # type: ignore[no-any-return]

    def start(self, cid: str) -> None:
        self.call("POST", f"/containers/{cid}/start", ok=(204, 304))

    def wait(self, cid: str, timeout: float) -> int:
        doc = self.json("POST", f"/containers/{cid}/wait", timeout=timeout)
        return int(doc.get("StatusCode", 1))

    def logs(self, cid: str) -> tuple[bytes, bytes]:
        """(stdout, stderr) of a stopped container without a TTY: the multiplexed stream, demultiplexed."""
        _, data = self.call("GET", f"/containers/{cid}/logs", query={"stdout": 1, "stderr": 1})
        out, err = bytearray(), bytearray()
        pos = 0
        while pos + 8 <= len(data):
            kind, size = data[pos], struct.unpack(">I", data[pos + 4:pos + 8])[0]
            chunk = data[pos + 8:pos + 8 + size]
            (err if kind == 2 else out).extend(chunk)
            pos += 8 + size
        return bytes(out), bytes(err)

    def put_archive(self, cid: str, path: str, tar: bytes) -> None:
        self.call("PUT", f"/containers/{cid}/archive", query={"path": path}, raw=tar,
                  content_type="application/x-tar")

    def remove(self, cid: str) -> None:
        self.call("DELETE", f"/containers/{cid}", query={"force": 1, "v": 1}, ok=(204, 404))
