"""The image's own loader, run in a created container of a daemon image: entrypoint = the loader, no network,
no capabilities, nothing mounted; the probe is copied in before the start. Every container carries the
session label and is removed in a `finally`, Ctrl-C included. The docker SDK is imported only for an overlay
build or a daemon the Engine client cannot reach."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ldfix.errors import Interrupted
from ldfix.image.base import ImageConfig
from ldfix.image.docker import LABEL, STOPPING, build, client
from ldfix.oracle.base import Trace, parse_fatal, parse_trace, probe_bytes, trace_env


class _Sdk:
    """The container calls through the docker SDK, for a daemon only it can reach (TLS, ssh)."""

    def __init__(self, cli: Any) -> None:
        self.cli = cli

    def create(self, spec: dict[str, Any]) -> str:
        host = spec["HostConfig"]
        c = self.cli.containers.create(
            spec["Image"], entrypoint=spec["Entrypoint"], command=spec["Cmd"],
            environment=dict(e.split("=", 1) for e in spec["Env"]), network_mode=host["NetworkMode"],
            labels=spec["Labels"], working_dir=spec["WorkingDir"], user=spec["User"], cap_drop=host["CapDrop"],
            security_opt=host["SecurityOpt"])
        return str(c.id)

    def inspect(self, cid: str) -> dict[str, Any]:
        return dict(self.cli.api.inspect_container(cid))

    def start(self, cid: str) -> None:
        self.cli.api.start(cid)

    def wait(self, cid: str, timeout: float) -> int:
        return int(self.cli.api.wait(cid, timeout=timeout).get("StatusCode", 1))

    def logs(self, cid: str) -> tuple[bytes, bytes]:
        return (self.cli.api.logs(cid, stdout=True, stderr=False), self.cli.api.logs(cid, stdout=False, stderr=True))

    def put_archive(self, cid: str, path: str, tar: bytes) -> None:
        self.cli.api.put_archive(cid, path, tar)

    def remove(self, cid: str) -> None:
        self.cli.api.remove_container(cid, force=True, v=True)


class DockerOracle:
    """Runs the image's loader in a created container: entrypoint = the loader, no network, no privileges,
    nothing mounted; the probe is copied in before the start. The container calls go through the small
    Engine client (image/engine.py) where it reaches the daemon, else through the docker SDK. Foreign-
    architecture images are not run."""

    can_overlay = True

    def __init__(self, engine: Any, image_id: str, config: ImageConfig, interp: str, timeout: float | None = None,
                 local: bool = False, sdk: Any = None) -> None:
        self.api = engine if engine is not None else _Sdk(sdk if sdk is not None else client())
        self.engine = engine
        self.image_id = image_id
        self.config = config
        self.interp = interp
        self.timeout = timeout if timeout is not None else float(os.environ.get("LDFIX_LOADER_TIMEOUT", "30"))
        self.local = local  # the daemon's overlay2 directories are readable here (and so writable as root)
        self._warm: tuple[tuple[str, ...], Future[str]] | None = None  # (what it was made for, the container)
        self._removing: list[threading.Thread] = []  # finished containers being removed

    PROBE = ".ldfix-probe.so"

    def _create(self, args: list[str], env: Mapping[str, str]) -> str:
        return str(self.api.create({
            "Image": self.image_id, "Entrypoint": [self.interp], "Cmd": args,
            "Env": [f"{k}={v}" for k, v in env.items()], "Labels": LABEL,
            "WorkingDir": self.config.working_dir or "/", "User": "0",
            "HostConfig": {"NetworkMode": "none", "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"]}}))

    @staticmethod
    def _key(args: list[str], env: Mapping[str, str]) -> tuple[str, ...]:
        return (*args, "\0", *sorted(f"{k}={v}" for k, v in env.items()))

    def warm(self, env: Mapping[str, str], cwd: str) -> None:
        """Create the trace container while the image is indexed: the probe is copied in at `trace`."""
        if self._warm is not None:
            return
        args, tenv = [f"/{self.PROBE}"], trace_env(env)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ldfix-warm")
        try:
            self._warm = (self._key(args, tenv), pool.submit(self._create, args, tenv))
        finally:
            pool.shutdown(wait=False)

    def release(self) -> None:
        warm, self._warm = self._warm, None
        if warm is not None:
            with contextlib.suppress(Exception):
                self.api.remove(warm[1].result())
        while self._removing:
            self._removing.pop().join(timeout=60)

    def _container(self, args: list[str], env: Mapping[str, str]) -> str:
        warm = self._warm
        if warm is not None and warm[0] == self._key(args, env):
            self._warm = None
            try:
                return warm[1].result()
            except Exception:
                pass  # the early create failed: make one now, and let that one report
        return self._create(args, env)

    def _copy_in(self, cid: str, files: dict[str, bytes]) -> None:
        """Put the probe into the created (not yet started) container: straight into its overlay2 upper
        directory when the daemon is local (no mount needed), else through the archive API."""
        if self.local:
            with contextlib.suppress(Exception):
                upper = self.api.inspect(cid)["GraphDriver"]["Data"]["UpperDir"]
                if upper and os.path.isdir(upper):
                    for name, data in files.items():
                        target = os.path.join(upper, name)
                        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
                        with os.fdopen(fd, "wb") as fh:
                            fh.write(data)
                    return
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o755
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        self.api.put_archive(cid, "/", buf.getvalue())

    def _run(self, args: list[str], env: Mapping[str, str], files: dict[str, bytes]) -> tuple[int, str, str]:
        cid = self._container(args, env)
        try:
            if STOPPING.is_set():
                raise Interrupted()
            if files:
                self._copy_in(cid, files)
            self.api.start(cid)
            code = self.api.wait(cid, self.timeout)
            out, err = self.api.logs(cid)
            return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        finally:
            self._remove_later(cid)

    def _remove_later(self, cid: str) -> None:
        """Remove a finished container in a thread while the scan goes on; `release` waits for it, and so does
        the interpreter at exit (an interrupt's cleanup removes whatever carries the session label)."""
        def remove() -> None:
            with contextlib.suppress(Exception):
                self.api.remove(cid)

        # not a daemon thread: the interpreter waits for it at exit even where no one calls `release`
        t = threading.Thread(target=remove, name="ldfix-remove", daemon=False)
        t.start()
        self._removing.append(t)

    def help_text(self) -> str | None:
        code, out, _ = self._run(["--help"], {}, {})
        return out if code == 0 else None

    def trace_with_overlay(self, lines: list[str], needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        """Build a throwaway image `FROM <this image>` + `lines` (no network), trace `needed` in it with the
        same env, and remove the image again."""
        dockerfile = f"FROM {self.image_id}\n" + "".join(line + "\n" for line in lines)
        cli = client()
        image_id = build(cli, "the fix overlay", fileobj=io.BytesIO(dockerfile.encode()), network_mode="none",
                         labels=LABEL)
        try:
            child = DockerOracle(self.engine, image_id, self.config, self.interp, self.timeout, self.local, sdk=cli)
            try:
                return child.trace(needed, env, cwd)
            finally:
                child.release()  # its container goes before the image it runs
        finally:
            with contextlib.suppress(Exception):
                cli.images.remove(image_id, force=True)

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        name = self.PROBE
        code, out, err = self._run([f"/{name}"], trace_env(env), {name: probe_bytes(needed)})
        return Trace(parse_trace(out, self.interp), parse_fatal(err) if code != 0 else None, code)
