"""The image's own loader, run in a created container of a daemon image: entrypoint = the loader, no network,
no capabilities, nothing mounted; the probe is copied in before the start. Every container carries the
session label and is removed in a `finally`, Ctrl-C included."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ldfix.errors import Interrupted
from ldfix.image.base import ImageConfig
from ldfix.image.docker import LABEL, STOPPING, build
from ldfix.oracle.base import Trace, parse_fatal, parse_trace, probe_bytes, trace_env


class DockerOracle:
    """Runs the image's loader in a created container: entrypoint = the loader, no network, no privileges,
    nothing mounted; the probe is copied in with put_archive. Foreign-architecture images are not run."""

    can_overlay = True

    def __init__(self, cli: Any, image_id: str, config: ImageConfig, interp: str, timeout: float | None = None,
                 local: bool = False) -> None:
        self.cli = cli
        self.image_id = image_id
        self.config = config
        self.interp = interp
        self.timeout = timeout if timeout is not None else float(os.environ.get("LDFIX_LOADER_TIMEOUT", "30"))
        self.local = local  # the daemon's overlay2 directories are readable here (and so writable as root)
        self._warm: tuple[tuple[str, ...], Future[Any]] | None = None  # (what it was made for, the container)

    PROBE = ".ldfix-probe.so"

    def _create(self, args: list[str], env: Mapping[str, str]) -> Any:
        return self.cli.containers.create(
            self.image_id, entrypoint=[self.interp], command=args, environment=dict(env),
            network_mode="none", labels=LABEL, working_dir=self.config.working_dir or "/", user="0",
            cap_drop=["ALL"], security_opt=["no-new-privileges"])

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
                warm[1].result().remove(force=True)

    def _container(self, args: list[str], env: Mapping[str, str]) -> Any:
        warm = self._warm
        if warm is not None and warm[0] == self._key(args, env):
            self._warm = None
            try:
                return warm[1].result()
            except Exception:
                pass  # the early create failed: make one now, and let that one report
        return self._create(args, env)

    def _copy_in(self, container: Any, files: dict[str, bytes]) -> None:
        """Put the probe into the created (not yet started) container: straight into its overlay2 upper
        directory when the daemon is local (no mount needed), else through the archive API."""
        if self.local:
            with contextlib.suppress(Exception):
                upper = container.attrs["GraphDriver"]["Data"]["UpperDir"]
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
        container.put_archive("/", buf.getvalue())

    def _run(self, args: list[str], env: Mapping[str, str], files: dict[str, bytes]) -> tuple[int, str, str]:
        container = self._container(args, env)
        try:
            if STOPPING.is_set():
                raise Interrupted()
            if files:
                self._copy_in(container, files)
            container.start()
            result = container.wait(timeout=self.timeout)
            out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            return int(result.get("StatusCode", 1)), out, err
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)

    def help_text(self) -> str | None:
        code, out, _ = self._run(["--help"], {}, {})
        return out if code == 0 else None

    def trace_with_overlay(self, lines: list[str], needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        """Build a throwaway image `FROM <this image>` + `lines` (no network), trace `needed` in it with the
        same env, and remove the image again."""
        dockerfile = f"FROM {self.image_id}\n" + "".join(line + "\n" for line in lines)
        image_id = build(self.cli, "the fix overlay", fileobj=io.BytesIO(dockerfile.encode()), network_mode="none",
                          labels=LABEL)
        try:
            child = DockerOracle(self.cli, image_id, self.config, self.interp, self.timeout, self.local)
            return child.trace(needed, env, cwd)
        finally:
            with contextlib.suppress(Exception):
                self.cli.images.remove(image_id, force=True)

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        name = self.PROBE
        code, out, err = self._run([f"/{name}"], trace_env(env), {name: probe_bytes(needed)})
        return Trace(parse_trace(out, self.interp), parse_fatal(err) if code != 0 else None, code)
