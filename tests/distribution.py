"""The real registry for tests: Debian's `docker-registry` (the distribution registry) on a free 127.0.0.1
port with a temporary config and storage, images pushed with Debian's `skopeo`; optionally behind htpasswd
auth. `FaultProxy` sits in front of one to inject what a real registry will not do on request: a stalled,
dropped, truncated or altered blob, or an error status."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_tools() -> None:
    missing = [t for t in ("docker-registry", "skopeo", "htpasswd") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: apt-get install docker-registry skopeo apache2-utils")


class Distribution:
    """One registry process. `user`/`password` switch on htpasswd auth."""

    def __init__(self, user: str | None = None, password: str | None = None, storage: Path | None = None,
                 token: TokenServer | None = None) -> None:
        """`storage`: a registry data directory to keep across runs (a bench's), else a temporary one.
        `token`: bearer-token auth as Docker Hub does it, with tokens from that server."""
        need_tools()
        self.dir = Path(tempfile.mkdtemp(prefix="ldfix-registry-"))
        self.port = free_port()
        self.user, self.password = user, password
        auth = ""
        if user is not None:
            subprocess.run(["htpasswd", "-Bbc", str(self.dir / "htpasswd"), user, password or ""], check=True,
                           capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: ldfix-test\n    path: {self.dir / 'htpasswd'}\n"
        if token is not None:
            auth = (f"auth:\n  token:\n    realm: {token.realm}\n    service: {token.service}\n"
                    f"    issuer: {token.issuer}\n    rootcertbundle: {token.cert}\n")
        (self.dir / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage or self.dir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n" + auth)
        self.log = open(self.dir / "log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not start: {(self.dir / 'log').read_text()[-2000:]}")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def push(self, source: str, name: str) -> str:
        """skopeo copy a daemon image (or an `oci:`/`docker-archive:` source) to NAME:TAG here."""
        src = source if source.startswith(("oci:", "docker-archive:", "oci-archive:")) else f"docker-daemon:{source}"
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false", src, f"docker://{self.host}/{name}"]
        if self.user is not None:
            cmd[2:2] = ["--dest-creds", f"{self.user}:{self.password}"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
        return f"{self.host}/{name}"

    def push_fresh(self, image: str, name: str, noise_bytes: int = 1 << 20) -> tuple[str, str]:
        """Push IMAGE plus one layer of fresh random bytes (so a daemon cannot already have every layer);
        (NAME:TAG here, the short id of the noise layer)."""
        import io
        import tarfile

        from tests.images import oci_layout_from_save

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("ldfix-registry-noise.bin")
            noise = os.urandom(noise_bytes)
            info.size = len(noise)
            tar.addfile(info, io.BytesIO(noise))
        with tempfile.TemporaryDirectory() as tmp:
            save = Path(tmp) / "image.tar"
            subprocess.run(["docker", "save", "-o", str(save), image], check=True, capture_output=True)
            layout = oci_layout_from_save(save, Path(tmp) / "oci", extra_layers=(buf.getvalue(),), tag="t")
            index = json.loads((layout / "index.json").read_text())
            manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
            noise_layer = manifest["layers"][-1]["digest"][7:19]
            return self.push(f"oci:{layout}:t", name), noise_layer

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = dict(headers or {})
        if self.user is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())

    def manifest(self, name: str, ref: str) -> tuple[bytes, str]:
        accept = ("application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")
        status, body, headers = self.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": accept})
        assert status == 200, (status, body)
        return body, headers.get("Content-Type", "")

    def put_manifest(self, name: str, ref: str, body: bytes, media_type: str) -> str:
        status, text, _ = self.request("PUT", f"/v2/{name}/manifests/{ref}", body=body,
                                       headers={"Content-Type": media_type})
        assert status == 201, (status, text)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def put_blob(self, name: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _, headers = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert status == 202, status
        location = headers["Location"].replace(f"http://{self.host}", "")
        sep = "&" if "?" in location else "?"
        status, text, _ = self.request("PUT", f"{location}{sep}digest={digest}", body=data,
                                       headers={"Content-Type": "application/octet-stream"})
        assert status == 201, (status, text)
        return digest

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token service for distribution's `auth: token` (what auth.docker.io is to Docker Hub): anonymous
    GET /token?service=...&scope=repository:NAME:pull,push answers {"token": JWT}, an RS256 JWT signed with
    a throwaway key whose self-signed certificate is the registry's root bundle (openssl does the crypto).
    `requests` lists the scopes asked for."""

    service = "ldfix-test-registry"
    issuer = "ldfix-test-token-issuer"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ldfix-token-"))
        self.key, self.cert = self.dir / "key.pem", self.dir / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "1", "-subj", "/CN=ldfix-test-token"], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True,
                             capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scopes: list[str]) -> str:
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": "", "aud": self.service, "exp": now + 600, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing}.{_b64url(sig)}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlparse

                query = parse_qs(urlparse(self.path).query)
                scopes = [s for value in query.get("scope", []) for s in value.split(" ")]
                server.requests.extend(scopes or ["(none)"])
                body = json.dumps({"token": server.token(scopes), "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultProxy:
    """Forwards to a registry; `fault` says what to do to the next blob GETs:
    None, "silent" (no answer at all), "stall" (headers, then silence), "trickle" (8 KiB every 0.2 s), "drop" (close after half, once), "truncate" (always close after
    half), "corrupt" (flip one byte), or an HTTP status (int) for every request. `log` lists request paths."""

    def __init__(self, upstream: Distribution) -> None:
        self.upstream = upstream
        self.fault: str | int | None = None
        self.dropped = False
        self.log: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forwarded(self) -> dict[str, str]:
                out = {k: v for k, v in self.headers.items() if k.lower() in ("range", "authorization")}
                if self.headers.get_all("Accept"):  # the daemon sends one Accept line per media type
                    out["Accept"] = ", ".join(self.headers.get_all("Accept") or [])
                return out

            def do_HEAD(self) -> None:
                headers = self._forwarded()
                status, _, up = proxy.upstream.request("HEAD", self.path, headers=headers)
                self.send_response(status)
                for k, v in up.items():
                    if k.lower() in ("content-type", "docker-content-digest", "content-length", "www-authenticate"):
                        self.send_header(k, v)
                self.end_headers()

            def do_GET(self) -> None:
                proxy.log.append(self.path + (" " + self.headers["Range"] if self.headers.get("Range") else ""))
                if proxy.fault == "silent":  # accepts the connection, never answers
                    time.sleep(30)
                    return
                if isinstance(proxy.fault, int):
                    body = json.dumps({"errors": [{"code": "X", "message": "injected"}]}).encode()
                    self.send_response(proxy.fault)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                headers = self._forwarded()
                status, body, up = proxy.upstream.request("GET", self.path, headers=headers)
                blob = "/blobs/sha256:" in self.path and status in (200, 206) and len(body) > 4096
                fault = proxy.fault if blob else None
                if fault == "corrupt":
                    body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                self.send_response(status)
                for k, v in up.items():
                    if k.lower() in ("content-type", "docker-content-digest", "content-range", "www-authenticate"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "stall":
                    time.sleep(30)
                    return
                if fault == "trickle":
                    try:
                        for at in range(0, len(body), 8192):
                            self.wfile.write(body[at:at + 8192])
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass
                    return
                if fault == "truncate" or (fault == "drop" and not proxy.dropped):
                    proxy.dropped = True
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        return Handler


def docker_config(tmp: Path, auths: dict[str, Any] | None = None, **extra: Any) -> str:
    """A DOCKER_CONFIG directory holding config.json with these auths (and credsStore / credHelpers)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps({"auths": auths or {}, **extra}))
    return str(tmp)


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def credential_helper(bin_dir: Path, name: str, user: str, secret: str) -> str:
    """A docker-credential-NAME program speaking the helper protocol (`get`, server URL on stdin)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    prog = bin_dir / f"docker-credential-{name}"
    prog.write_text("#!/bin/sh\nread server\n"
                    f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\n")
    prog.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
