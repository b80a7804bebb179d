"""A small read-only registry (the pull side of the OCI distribution API, HTTP on 127.0.0.1, which Docker
treats as an insecure registry) so the real daemon can pull from somewhere in a machine without a network.

It serves one image made from a `docker save` of a local image: its config and its layers gzip-compressed,
under any repository name. Names starting with `denied/` get DENIED, unknown tags MANIFEST_UNKNOWN, and with
`slow=True` every blob trickles out so a pull can be interrupted in the middle."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.images import read_save

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, image: str, tag: str = "1", slow: bool = False, noise_bytes: int = 1 << 20) -> None:
        self.tag = tag
        self.slow = slow
        self.blobs: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory() as tmp:
            save = Path(tmp) / "image.tar"
            subprocess.run(["docker", "save", "-o", str(save), image], check=True, capture_output=True)
            config, raw_layers = read_save(save)
        layers = []
        for raw in raw_layers:
            blob = gzip.compress(raw, 1)
            self.blobs[_digest(blob)] = blob
            layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(blob),
                           "digest": _digest(blob)})
        # one layer of fresh random bytes, so the daemon cannot already have every layer (it dedups by content)
        extra = io.BytesIO()
        with tarfile.open(fileobj=extra, mode="w") as tar:
            info = tarfile.TarInfo("ldfix-registry-noise.bin")
            noise = os.urandom(noise_bytes)
            info.size = len(noise)
            tar.addfile(info, io.BytesIO(noise))
        raw = extra.getvalue()
        blob = gzip.compress(raw, 1)
        self.blobs[_digest(blob)] = blob
        layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(blob),
                       "digest": _digest(blob)})
        self.noise_layer = _digest(blob)
        cfg = json.loads(config)
        cfg["rootfs"]["diff_ids"].append(_digest(raw))
        cfg.setdefault("history", []).append({"created_by": "ldfix test registry noise"})
        config = json.dumps(cfg).encode()
        self.blobs[_digest(config)] = config
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                       "digest": _digest(config)},
            "layers": layers}).encode()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def ref(self, name: str, tag: str | None = None) -> str:
        return f"127.0.0.1:{self.port}/{name}:{tag or self.tag}"

    def __enter__(self) -> Registry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _serve(self, body: bytes, content_type: str, digest: str, trickle: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if self.command == "HEAD":
                    return
                step = 16 * 1024 if trickle else len(body) or 1
                try:
                    for at in range(0, len(body), step):
                        self.wfile.write(body[at:at + step])
                        self.wfile.flush()
                        if trickle:
                            time.sleep(0.2)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the daemon gave up on the pull (an interrupted test): nothing to report

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                if self.path in ("/v2/", "/v2"):
                    self._serve(b"{}", "application/json", "", False)
                    return
                m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", self.path)
                if m is None:
                    self._error(404, "NOT_FOUND", "not found")
                    return
                name, kind, ref = m.groups()
                if name.startswith("denied/"):
                    self._error(403, "DENIED", "requested access to the resource is denied")
                elif kind == "manifests":
                    if ref not in (registry.tag, _digest(registry.manifest)):
                        self._error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
                    else:
                        self._serve(registry.manifest, MANIFEST_TYPE, _digest(registry.manifest), False)
                elif ref in registry.blobs:
                    blob = registry.blobs[ref]
                    self._serve(blob, "application/octet-stream", ref, registry.slow and len(blob) > 4096)
                else:
                    self._error(404, "BLOB_UNKNOWN", "blob unknown")

        return Handler
