"""Images in a Docker daemon.

Pulling streams the daemon's progress events to a callback (the CLI draws rich bars on stderr). Files are
read straight from the image's overlay2 layer directories when the daemon is local and they are readable:
nothing is copied out and a 1 GB library costs a few reads. The image's own loader is asked through a
created (never privileged, `--network none`) container whose entrypoint is the loader itself; every
container ldfix creates carries the label `ldfix=scan` and is removed in a `finally`, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat as statmod
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ldfix.errors import ImageAccessError, Interrupted
from ldfix.image.base import ImageConfig, ImageView, Kind, Stat
from ldfix.image.refs import ImageRef
from ldfix.loader.elfwrite import build_shared_object
from ldfix.oracle.ldso import Trace, parse_fatal, parse_trace

SESSION = uuid.uuid4().hex[:16]
LABEL = {"ldfix": "scan", "ldfix.session": SESSION}  # `ldfix=scan` finds any leftover; the session, ours
_STOPPING = threading.Event()


def client() -> Any:
    import docker

    try:
        return docker.from_env()
    except docker.errors.DockerException as err:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageAccessError(f"cannot reach the Docker daemon at {host}: {_short(err)}",
                               "is dockerd running, may you use its socket, is the right context active?") from err


def _short(err: Exception) -> str:
    text = str(getattr(err, "explanation", None) or err)
    return text.splitlines()[0][:300] if text else type(err).__name__


class LayerFS:
    """A read-only overlay of layer directories, top layer first, with overlayfs whiteouts: a 0/0
    character device hides a lower entry, and `trusted.overlay.opaque=y` on a directory hides lower
    contents."""

    def __init__(self, layers: list[str]) -> None:
        self.layers = layers

    def _find(self, path: str) -> tuple[str, os.stat_result] | None:
        rel = path.lstrip("/")
        for layer in self.layers:
            full = os.path.join(layer, rel) if rel else layer
            try:
                st = os.lstat(full)
            except OSError:
                if self._opaque_above(layer, rel):
                    return None
                continue
            if statmod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None
            return full, st
        return None

    def _opaque_above(self, layer: str, rel: str) -> bool:
        parts = rel.split("/")[:-1]
        cur = layer
        for part in parts:
            cur = os.path.join(cur, part)
            if _is_opaque(cur):
                return True
        return False

    def lstat(self, path: str) -> Stat | None:
        found = self._find(path)
        return None if found is None else _stat(found[1])

    def readlink(self, path: str) -> str:
        found = self._find(path)
        if found is None:
            raise FileNotFoundError(path)
        return os.readlink(found[0])

    def listdir(self, path: str) -> list[str]:
        return [name for name, _ in self.kinds(path)]

    def kinds(self, path: str) -> list[tuple[str, Kind]]:
        """The merged entries of a directory with their kind, from the directory entries' types: one pass, no
        stat per entry except for character devices (overlayfs whiteouts)."""
        rel = path.lstrip("/")
        found: dict[str, Kind] = {}
        hidden: set[str] = set()
        for layer in self.layers:
            full = os.path.join(layer, rel) if rel else layer
            try:
                entries = list(os.scandir(full))
            except OSError:
                entries = []
            for e in entries:
                if e.name in found or e.name in hidden:
                    continue
                try:
                    if e.is_symlink():
                        kind = Kind.LINK
                    elif e.is_dir(follow_symlinks=False):
                        kind = Kind.DIR
                    elif e.is_file(follow_symlinks=False):
                        kind = Kind.FILE
                    else:
                        st = e.stat(follow_symlinks=False)
                        if statmod.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                            hidden.add(e.name)
                            continue
                        kind = Kind.OTHER
                except OSError:
                    continue
                found[e.name] = kind
            if entries and _is_opaque(full):
                break
        return list(found.items())

    def read(self, path: str, offset: int, size: int) -> bytes:
        found = self._find(path)
        if found is None:
            raise FileNotFoundError(path)
        fd = os.open(found[0], os.O_RDONLY | os.O_NOFOLLOW)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)


def _stat(st: os.stat_result) -> Stat:
    mode = st.st_mode
    kind = (Kind.FILE if statmod.S_ISREG(mode) else Kind.DIR if statmod.S_ISDIR(mode)
            else Kind.LINK if statmod.S_ISLNK(mode) else Kind.OTHER)
    return Stat(kind, st.st_size, statmod.S_IMODE(mode))


def _is_opaque(path: str) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


ProgressCb = Callable[[dict[str, Any]], None]


def pull(cli: Any, ref: ImageRef, platform: str | None, progress: ProgressCb | None) -> None:
    import docker

    repo = ref.repository or ref.value
    tag = ref.digest or ref.tag
    try:
        for event in cli.api.pull(repo, tag=tag, stream=True, decode=True, platform=platform):
            if "errorDetail" in event or "error" in event:
                detail = event.get("errorDetail", {}).get("message") or event.get("error")
                raise ImageAccessError(f"pulling {ref.value} failed: {detail}",
                                       "check the name and tag, 'docker login', and the registry's reachability")
            if progress:
                progress(event)
    except docker.errors.APIError as err:
        raise ImageAccessError(f"pulling {ref.value} failed: {_short(err)}",
                               "check the name and tag, 'docker login', and the registry's reachability "
                               "(or use --no-pull for a local image)") from err


def open_daemon_image(ref: ImageRef, platform: str | None, no_pull: bool, quiet: bool,
                      progress: ProgressCb | None = None) -> ImageView:
    import docker

    cli = client()
    try:
        image = cli.images.get(ref.value)
    except docker.errors.ImageNotFound:
        if no_pull:
            raise ImageAccessError(f"image {ref.value} is not present locally",
                                   "run without --no-pull, or 'docker pull' it first") from None
        pull(cli, ref, platform, progress)
        try:
            image = cli.images.get(ref.value)
        except docker.errors.ImageNotFound as err:
            raise ImageAccessError(f"image {ref.value} not found after pulling", "check the tag") from err
    except docker.errors.APIError as err:
        raise ImageAccessError(f"cannot inspect {ref.value}: {_short(err)}", "check the reference") from err
    attrs = image.attrs
    cfg = attrs.get("Config") or {}
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in (cfg.get("Env") or []))
    arch = attrs.get("Architecture") or "amd64"
    if platform and "/" in platform and platform.split("/")[1] != arch:
        raise ImageAccessError(f"{ref.value} is {attrs.get('Os')}/{arch}, not {platform}",
                               f"pull it with --platform {platform} first (one tag holds one platform here)")
    config = ImageConfig(env=env, working_dir=cfg.get("WorkingDir") or "/", architecture=arch,
                         os=attrs.get("Os") or "linux", variant=attrs.get("Variant"),
                         labels=cfg.get("Labels") or {}, entrypoint=tuple(cfg.get("Entrypoint") or ()),
                         user=cfg.get("User") or "", onbuild=tuple(cfg.get("OnBuild") or ()))
    layers = None if os.environ.get("LDFIX_DAEMON_READ") == "save" or _remote() else _layer_dirs(attrs)
    if layers is not None:
        view = ImageView(LayerFS(layers), config, ref.value, attrs.get("Id"))
    else:
        view = _saved_view(cli, attrs, ref.value)
        view.config = config
    if config.entrypoint:
        view.notes.append(f"the image entrypoint {list(config.entrypoint)} was not run; scripts it runs may "
                          "change LD_LIBRARY_PATH at run time")
    view.oracle = DockerOracle(cli, attrs["Id"], config, local=layers is not None)
    return view


def _remote() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return bool(host) and not host.startswith("unix://")


def _saved_view(cli: Any, attrs: Mapping[str, Any], ref: str) -> ImageView:
    """The fallback when the daemon's layer directories cannot be read here (another storage driver, a remote
    daemon, no permission): stream `docker save` of the image into a temporary file, read it as an archive,
    and delete it when the scan ends. This copies the image once; overlay2 on a local daemon copies nothing."""
    import tempfile

    from ldfix.image.archive import open_archive

    fd, tmp = tempfile.mkstemp(prefix="ldfix-save-", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in cli.api.get_image(attrs["Id"]):
                out.write(chunk)
        view = open_archive("docker-archive", tmp)
    except Exception as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, ImageAccessError):
            raise
        raise ImageAccessError(f"cannot read {ref}'s files through docker save: {_short(err)}",
                               "run ldfix as root on the Docker host (overlay2), or docker save it and scan "
                               "docker-archive:FILE") from err
    fs = view.fs
    closer = getattr(fs, "close", None)

    def close() -> None:
        if callable(closer):
            closer()
        with contextlib.suppress(OSError):
            os.unlink(tmp)

    fs.close = close  # type: ignore[attr-defined]
    driver = (attrs.get("GraphDriver") or {}).get("Name")
    view.notes = [f"the image's layers were read through docker save (storage driver {driver!r}, or the daemon's "
                  "layer directories are not readable from here)"]
    view.ref = ref
    view.image_id = attrs.get("Id")
    return view


def _layer_dirs(attrs: Mapping[str, Any]) -> list[str] | None:
    gd = attrs.get("GraphDriver") or {}
    if gd.get("Name") != "overlay2":
        return None
    data = gd.get("Data") or {}
    layers = []
    if data.get("UpperDir"):
        layers.append(data["UpperDir"])
    if data.get("LowerDir"):
        layers.extend(data["LowerDir"].split(":"))
    if not layers or not all(os.access(d, os.R_OK | os.X_OK) for d in layers):
        return None
    return layers


class DockerOracle:
    """Runs the image's loader in a created container: entrypoint = the loader, no network, no privileges,
    nothing mounted; the probe is copied in with put_archive. Foreign-architecture images are not run."""

    def __init__(self, cli: Any, image_id: str, config: ImageConfig, timeout: float | None = None,
                 local: bool = False) -> None:
        from ldfix.elfarch import interp_for

        self.cli = cli
        self.image_id = image_id
        self.config = config
        self.interp = interp_for(config.architecture) or "/lib64/ld-linux-x86-64.so.2"
        self.timeout = timeout if timeout is not None else float(os.environ.get("LDFIX_LOADER_TIMEOUT", "30"))
        self.local = local  # the daemon's overlay2 directories are readable here (and so writable as root)

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
        container = self.cli.containers.create(
            self.image_id, entrypoint=[self.interp], command=args, environment=dict(env),
            network_mode="none", labels=LABEL, working_dir=self.config.working_dir or "/", user="0",
            cap_drop=["ALL"], security_opt=["no-new-privileges"])
        try:
            if _STOPPING.is_set():
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
        image_id = _build(self.cli, "the fix overlay", fileobj=io.BytesIO(dockerfile.encode()), network_mode="none",
                          labels=LABEL)
        try:
            return DockerOracle(self.cli, image_id, self.config, self.timeout, self.local).trace(needed, env, cwd)
        finally:
            with contextlib.suppress(Exception):
                self.cli.images.remove(image_id, force=True)

    def trace(self, needed: list[str], env: Mapping[str, str], cwd: str) -> Trace:
        run_env = {k: v for k, v in env.items() if k not in ("LD_PRELOAD", "LD_DEBUG")}
        run_env["LD_TRACE_LOADED_OBJECTS"] = "1"
        name = ".ldfix-probe.so"
        code, out, err = self._run([f"/{name}"], run_env, {name: build_shared_object(None, needed)})
        return Trace(parse_trace(out, self.interp), parse_fatal(err) if code != 0 else None, code)


def interrupt_cleanup() -> int:
    """On Ctrl-C or SIGTERM: remove every container (and overlay image) this process created, found by its
    session label, so nothing is left even when the interrupt came in the middle of an API call. Returns how
    many were removed."""
    _STOPPING.set()
    removed = 0
    with contextlib.suppress(Exception):
        cli = client()
        for container in cli.containers.list(all=True, filters={"label": f"ldfix.session={SESSION}"}):
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed += 1
        for image in cli.images.list(filters={"label": f"ldfix.session={SESSION}"}):
            with contextlib.suppress(Exception):
                cli.images.remove(image.id, force=True)
    return removed


def leftover_containers(cli: Any) -> Iterator[Any]:
    yield from cli.containers.list(all=True, filters={"label": "ldfix=scan"})


def _build(cli: Any, what: str, **kwargs: Any) -> str:
    """Run one build through the daemon's build API (intermediate containers always removed); the image ID.
    A failed step is an ImageAccessError naming `what`."""
    image_id = None
    log = kwargs.pop("log", None)
    try:
        stream = cli.api.build(rm=True, forcerm=True, decode=True, **kwargs)
        for event in stream:
            if "errorDetail" in event or "error" in event:
                detail = event.get("errorDetail") or {}
                message = str(detail.get("message") or event.get("error") or "build failed").strip()
                raise ImageAccessError(f"docker build of {what} failed: {message.splitlines()[0][:300]}",
                                       "fix the build (docker build shows the whole log); the daemon's build API "
                                       "has no heredocs or RUN --mount, so for those build with docker buildx and "
                                       "scan the result with --image REF")
            text = event.get("stream")
            if text and log is not None:
                log(str(text))
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except ImageAccessError:
        raise
    except Exception as err:  # the SDK raises APIError, BuildError, requests errors
        raise ImageAccessError(f"docker build of {what} failed: {_short(err)}",
                               "is the daemon reachable, is the build context readable?") from err
    if image_id is None:
        raise ImageAccessError(f"docker build of {what} reported no image", "run docker build to see why")
    return image_id


def build_image(dockerfile: str, target: str | None, build_args: dict[str, str],
                log: Callable[[str], None] | None = None) -> str:
    """`docker build` of DOCKERFILE with its directory as the context; returns the image ID."""
    path = os.path.abspath(dockerfile)
    return _build(client(), dockerfile, path=os.path.dirname(path), dockerfile=path, target=target,
                  buildargs=build_args or None, labels={"ldfix": "build"}, log=log)
