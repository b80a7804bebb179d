"""Images in a Docker daemon: pull with progress events, read the files, build.

Pulling streams the daemon's progress events to a callback (the CLI draws rich bars on stderr). Files are
read straight from the image's overlay2 layer directories when the daemon is local and they are readable:
nothing is copied out and a 1 GB library costs a few reads. Every container and image ldfix creates carries
the label `ldfix=scan` plus this process's session label, so an interrupt can remove them all
(`interrupt_cleanup`). The loader runner that uses those containers is oracle/docker.py.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ldfix.errors import DaemonUnreachable, ImageAccessError
from ldfix.image.base import DaemonImage, ImageFS, ImageView, config_from
from ldfix.image.overlay2 import merge_host_layers
from ldfix.image.refs import ImageRef, Platform

SESSION = uuid.uuid4().hex[:16]
LABEL = {"ldfix": "scan", "ldfix.session": SESSION}  # `ldfix=scan` finds any leftover; the session, ours
STOPPING = threading.Event()


def client() -> Any:
    import docker

    try:
        return docker.from_env()
    except docker.errors.DockerException as err:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise DaemonUnreachable(f"cannot reach the Docker daemon at {host}: {_short(err)}",
                               "is dockerd running, may you use its socket, is the right context active?") from err


def _short(err: Exception) -> str:
    text = str(getattr(err, "explanation", None) or err)
    return text.splitlines()[0][:300] if text else type(err).__name__


ProgressCb = Callable[[dict[str, Any]], None]




def pull(cli: Any, ref: ImageRef, platform: Platform | None, progress: ProgressCb | None) -> None:
    import docker

    repo = ref.repository or ref.value
    tag = ref.digest or ref.tag
    try:
        for event in cli.api.pull(repo, tag=tag, stream=True, decode=True,
                                 platform=str(platform) if platform else None):
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


def open_daemon_image(ref: ImageRef, platform: Platform | None, no_pull: bool,
                      progress: ProgressCb | None = None) -> ImageView:
    """The image's config from the daemon, its files from its overlay2 layer directories (or `docker save`).
    The inspect goes through the small Engine client (no docker SDK import) where it reaches the daemon; the
    SDK is loaded only to pull, to save, or for a daemon behind TLS or ssh."""
    from ldfix.image import engine as eng

    attrs = None
    api = None
    if eng.available():
        api = eng.Engine()
        try:
            attrs = api.inspect_image(ref.value)
        except eng.EngineError as err:
            raise ImageAccessError(f"cannot inspect {ref.value}: {err}", "check the reference") from err
    if attrs is None and api is not None and no_pull:  # the daemon said it has no such image
        raise _absent(ref)
    if attrs is None:
        attrs = _inspect_or_pull(ref, platform, no_pull, progress)
    config = config_from(attrs.get("Config") or {}, attrs.get("Architecture"), attrs.get("Os"), attrs.get("Variant"))
    if platform is not None and not platform.matches(config):
        raise ImageAccessError(f"{ref.value} is {config.platform}, not {platform}",
                               f"pull it with --platform {platform} first (one tag holds one platform here)")
    layers = None if os.environ.get("LDFIX_DAEMON_READ") == "save" or _remote() else _layer_dirs(attrs)
    if layers is not None:
        from ldfix.image import snapshot

        key = snapshot.key_for(attrs["Id"], layers)
        tree: ImageFS | None = snapshot.load_tree(key)
        if tree is None:
            merged = merge_host_layers(layers)
            snapshot.save_tree(key, merged)
            tree = merged
        view = ImageView(tree, config, ref.value, attrs.get("Id"), snapshot_key=key)
    else:
        view = _saved_view(client(), attrs, ref.value)
        view.config = config
    if config.entrypoint:
        view.notes.append(f"the image entrypoint {list(config.entrypoint)} was not run; scripts it runs may "
                          "change LD_LIBRARY_PATH at run time")
    view.daemon = DaemonImage(api, attrs["Id"], local=layers is not None)
    return view


def _absent(ref: ImageRef) -> ImageAccessError:
    return ImageAccessError(f"image {ref.value} is not present locally",
                            "run without --no-pull, or 'docker pull' it first")


def _inspect_or_pull(ref: ImageRef, platform: Platform | None, no_pull: bool,
                     progress: ProgressCb | None) -> dict[str, Any]:
    """The inspect document through the docker SDK, pulling the image first when it is not here."""
    import docker

    cli = client()
    try:
        return dict(cli.images.get(ref.value).attrs)
    except docker.errors.ImageNotFound:
        if no_pull:
            raise _absent(ref) from None
        pull(cli, ref, platform, progress)
        try:
            return dict(cli.images.get(ref.value).attrs)
        except docker.errors.ImageNotFound as err:
            raise ImageAccessError(f"image {ref.value} not found after pulling", "check the tag") from err
    except docker.errors.APIError as err:
        raise ImageAccessError(f"cannot inspect {ref.value}: {_short(err)}", "check the reference") from err


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
    view.closers.insert(0, lambda: os.unlink(tmp) if os.path.exists(tmp) else None)
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


def interrupt_cleanup() -> int:
    """On Ctrl-C or SIGTERM: remove every container (and overlay image) this process created, found by its
    session label, so nothing is left even when the interrupt came in the middle of an API call. Returns how
    many were removed."""
    STOPPING.set()
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


def build(cli: Any, what: str, **kwargs: Any) -> str:
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
    return build(client(), dockerfile, path=os.path.dirname(path), dockerfile=path, target=target,
                  buildargs=build_args or None, labels={"ldfix": "build"}, log=log)
