"""The Engine client's HTTP framing and log demultiplexing, against a server on a real unix socket that
answers as dockerd does (chunked bodies, Content-Length bodies, the 8-byte stream headers of logs)."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from ldfix.errors import DaemonUnreachable
from ldfix.image.engine import Engine, EngineError, _dechunk


def serve(path: Path, responses: list[bytes]) -> list[bytes]:
    """Answer one connection per response on a unix socket; returns the requests received."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    got: list[bytes] = []

    def run() -> None:
        for resp in responses:
            conn, _ = server.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += conn.recv(4096)
            got.append(head + b"\r\n\r\n" + body)
            conn.sendall(resp)
            conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return got


def test_chunked_and_sized_bodies_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "d.sock"
    chunked = b'{"Id": "sha256:ab' + b'c", "Config": {}}'
    got = serve(sock, [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{17:x}\r\n".encode() + chunked[:17] + b"\r\n" + f"{len(chunked) - 17:x}\r\n".encode() + chunked[17:]
        + b"\r\n0\r\n\r\n",
        b'HTTP/1.1 404 Not Found\r\nContent-Length: 29\r\n\r\n{"message":"No such image: x"}',
        b'HTTP/1.1 201 Created\r\nContent-Length: 12\r\n\r\n{"Id":"c1"}\n',
        b'HTTP/1.1 500 Oops\r\nContent-Length: 21\r\n\r\n{"message":"broken"}\n',
    ])
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    api = Engine(timeout=5)
    assert api.inspect_image("a/b:1") == {"Id": "sha256:abc", "Config": {}}
    assert api.inspect_image("x") is None
    assert api.create({"Image": "i"}) == "c1"
    with pytest.raises(EngineError, match="broken"):
        api.start("c1")
    assert got[0].startswith(b"GET /images/a%2Fb%3A1/json HTTP/1.1\r\n")
    assert got[2].startswith(b"POST /containers/create ") and got[2].endswith(b'{"Image": "i"}')


def test_logs_are_demultiplexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = tmp_path / "d.sock"
    frames = b"".join(struct.pack(">BxxxI", kind, len(text)) + text
                      for kind, text in ((1, b"out one\n"), (2, b"err\n"), (1, b"out two\n")))
    serve(sock, [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(frames) + frames])
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    assert Engine(timeout=5).logs("c") == (b"out one\nout two\n", b"err\n")


def test_no_daemon_is_daemon_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(DaemonUnreachable, match="cannot reach the Docker daemon"):
        Engine(timeout=1).inspect_image("x")


def test_tls_daemons_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(ValueError):
        Engine()


def test_dechunk_needs_the_last_chunk() -> None:
    assert _dechunk(b"3\r\nabc\r\n0\r\n\r\n") == b"abc"
    with pytest.raises(ValueError):
        _dechunk(b"3\r\nabc\r\n")
