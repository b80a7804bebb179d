"""The few Docker Engine API calls a scan makes (inspect an image, create / start / wait for / read / remove a
container, put a file into it), over the daemon's socket with the standard library's HTTP client.

Why not the docker SDK here: importing it (with requests and urllib3) costs 0.25-0.3 s, as much as the whole
static scan of a small image, and a scan needs six endpoints. The SDK stays for what needs its machinery
(pulling with progress, builds, `docker save`, TLS and ssh daemons): `available()` says whether this
client can reach the daemon the SDK would use (DOCKER_HOST unset, `unix://` or plain `tcp://`)."""

from __future__ import annotations

import http.client
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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


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

    def _conn(self, timeout: float | None = None) -> http.client.HTTPConnection:
        t = timeout if timeout is not None else self.timeout
        if self.kind == "unix":
            return _UnixConnection(self.address, t)
        host, _, port = self.address.partition(":")
        return http.client.HTTPConnection(host, int(port or 2375), timeout=t)

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
             raw: bytes | None = None, content_type: str = "application/json", timeout: float | None = None,
             ok: tuple[int, ...] = (200, 201, 204)) -> tuple[int, bytes]:
        url = path + ("?" + urlencode(query) if query else "")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        conn = self._conn(timeout)
        try:
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (OSError, http.client.HTTPException) as err:
                where = self.address if self.kind == "tcp" else f"unix://{self.address}"
                raise DaemonUnreachable(f"cannot reach the Docker daemon at {where}: {err}",
                                        "is dockerd running, may you use its socket?") from err
        finally:
            conn.close()
        if resp.status not in ok:
            try:
                message = json.loads(payload).get("message", "")
            except ValueError:
                message = payload.decode("utf-8", "replace")[:300]
            raise EngineError(resp.status, message or f"HTTP {resp.status}")
        return resp.status, payload

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
