"""The composition root: an ImageRef becomes an ImageView and an Oracle, then a scan, then a Report with its
verified fix. `ldfix scan`, `ldfix patch` and the benches call this module; nothing else picks an image
source or a loader runner, and nothing else parses a reference string."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ldfix.diagnose.context import ImageFacts, prepare
from ldfix.diagnose.finding import Report
from ldfix.diagnose.rules import REGISTRY
from ldfix.diagnose.scan import ScanOptions, diagnose
from ldfix.errors import DaemonUnreachable, ImageAccessError, UsageError
from ldfix.fix.plan import UseEnv
from ldfix.fix.verify import Check, check, plan_and_verify
from ldfix.image.base import ImageView
from ldfix.image.refs import ImageRef, Platform, Transport
from ldfix.loader.ldcache import LdCache
from ldfix.oracle.base import Oracle

if TYPE_CHECKING:
    from ldfix.frameworks.detect import SiteDists

PullProgress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Source:
    """How to open an image: where it is and what the user said about it."""

    ref: ImageRef
    env: Mapping[str, str] = field(default_factory=dict)  # --env: applied over the image's own env
    platform: Platform | None = None
    no_pull: bool = False
    static: bool = False  # never run anything from the image
    progress: PullProgress | None = None
    mirrors: tuple[str, ...] = ()  # --registry-mirror: for Docker Hub names
    cache: str | None = None  # --cache DIR: registry layers and what was read from them
    say: Callable[[str], None] | None = None  # one line to the user (stderr)


def _native(arch: str) -> bool:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine) == arch


def open_view(source: Source) -> ImageView:
    """The image's files and config, from whichever transport the reference names."""
    ref, env, platform = source.ref, dict(source.env), source.platform
    if ref.transport is Transport.DIR:
        from ldfix.image.rootfs import open_rootfs

        working_dir = env.pop("WORKDIR", "/")
        return open_rootfs(ref.value, env, working_dir, platform.architecture if platform else "amd64")
    if ref.transport is Transport.DAEMON:
        from ldfix.image.docker import open_daemon_image

        try:
            view = open_daemon_image(ref, platform, source.no_pull, source.progress)
        except DaemonUnreachable as err:
            if source.no_pull:
                raise DaemonUnreachable(err.message, "without a daemon the image is read from its registry; "
                                        "leave out --no-pull for that") from None
            if source.say:
                source.say(f"no Docker daemon is reachable: reading {ref.value} from its registry")
            view = _registry_view(source)
    elif ref.transport is Transport.REGISTRY:
        if source.no_pull:
            raise UsageError("--no-pull and registry: contradict each other", "leave out --no-pull")
        view = _registry_view(source)
    else:
        from ldfix.image.archive import open_archive
        from ldfix.loader.keep import ScanKeep

        view = open_archive(ref.transport.value, ref.value, ScanKeep())
        if platform is not None and not platform.matches(view.config):
            view.close()
            raise UsageError(f"{ref.transport.value}:{ref.value} is {view.config.platform}, not {platform}",
                             "leave out --platform, or give the archive of that platform")
    if env:
        view.config = replace(view.config, env={**view.config.env, **env})
    return view


def _registry_view(source: Source) -> ImageView:
    from ldfix.image.registry import remote_name
    from ldfix.image.remote import open_registry_image
    from ldfix.loader.keep import ScanKeep

    ref = source.ref
    if ref.repository is None:
        raise ImageAccessError(f"{ref.value} names no repository, so no registry can be asked",
                               "give NAME@sha256:... or NAME:TAG")
    return open_registry_image(remote_name(ref.repository, ref.tag, ref.digest), source.platform, ScanKeep(),
                               source.cache, source.mirrors, source.progress)


def oracle_for(view: ImageView, ref: ImageRef, static: bool) -> Oracle | None:
    """The image's own loader when it can run here, else None with a note saying why."""
    if static:
        return None
    arch = view.config.architecture
    from ldfix.elfarch import interp_for

    interp = interp_for(arch)
    if view.daemon is not None:
        if not _native(arch) or interp is None:
            view.notes.append(f"the image is {view.config.platform}, not this machine's architecture: scanned "
                              "statically, libraries[].verified is null")
            return None
        from ldfix.oracle.docker import DockerOracle

        d = view.daemon
        return DockerOracle(d.engine, d.image_id, view.config, interp, local=d.local)
    if ref.transport is Transport.DIR:
        from ldfix.oracle.chroot import ChrootOracle

        root = ref.value
        if interp and _native(arch) and ChrootOracle.available(root, interp):
            return ChrootOracle(root, interp)
        view.notes.append("the image's loader was not asked (needs root and a loader for this machine's "
                          "architecture): libraries[].verified is null")
    return None


def scan_view(view: ImageView, oracle: Oracle | None, options: ScanOptions, env: Mapping[str, str] | None = None,
              facts: ImageFacts | None = None, progress: Callable[[int], None] | None = None
              ) -> tuple[Report, ImageFacts]:
    """Scan an open view with its own env (or `env`, e.g. the env a Dockerfile gives its image), check every
    framework installed in it, and plan its verified fix. Pass the `facts` of an earlier scan of the same view
    to skip indexing it again."""
    run_env = dict(env if env is not None else view.config.env)
    if oracle is not None and facts is None:
        oracle.warm(run_env, view.config.working_dir)  # its container is created while the image is indexed
    try:
        return _scan_view(view, oracle, options, run_env, facts or prepare(view, oracle, progress))
    finally:
        if oracle is not None:
            oracle.release()


def _scan_view(view: ImageView, oracle: Oracle | None, options: ScanOptions, run_env: dict[str, str],
               facts: ImageFacts) -> tuple[Report, ImageFacts]:
    from ldfix.frameworks.check import check_all, owned_sonames
    from ldfix.frameworks.detect import detect

    found_notes: list[str] = []
    key = facts.view.snapshot_key
    known = _known_dists(key)
    sites_known = len(known) if known is not None else 0
    installs = detect(facts.walker, facts.index.package_dirs, found_notes, known)
    if key is not None and known is not None and len(known) > sites_known:  # detect added the sites it read
        from ldfix.image import snapshot

        snapshot.save_data(key, "dists", known)
    owned = owned_sonames(facts.index.by_soname, installs)
    report, ctx = diagnose(facts, list(options.libs), run_env, options.fail_on, options.frameworks, owned)
    entries, extra = check_all(ctx, installs, run_env)
    order = {r.code: i for i, r in enumerate(REGISTRY)}
    findings = sorted(report.findings + tuple(extra), key=lambda f: order[f.code])
    if owned:
        found_notes.append(f"{len(owned)} libraries that only frameworks' wheels hold are checked from the framework "
                           "objects that load them (frameworks[]), not from a program with no RPATH")
    report = replace(report, findings=tuple(findings), frameworks=tuple(entries) + report.frameworks,
                     notes=report.notes + tuple(found_notes))

    def frameworks_ok(after: Mapping[str, str], cache: LdCache | None) -> bool:
        again = replace(ctx, facts=replace(facts, cache=cache)) if cache is not facts.cache else ctx
        return not [f for f in check_all(again, installs, after)[1] if options.fail_on.blocks(f.severity)]

    fix, notes = plan_and_verify(ctx, report, options.explicit, frameworks_ok if installs else None)
    return replace(report, fix=fix, notes=report.notes + tuple(notes)), facts


def _known_dists(key: str | None) -> SiteDists | None:
    """The package metadata an earlier scan of this image read, kept beside its snapshot (empty when none
    was); None when the image has no snapshot key."""
    if key is None:
        return None
    from ldfix.image import snapshot

    known = snapshot.load_data(key, "dists")
    return known if isinstance(known, dict) else {}


def verify_env(facts: ImageFacts, options: ScanOptions, before: Mapping[str, str], after: Mapping[str, str]
               ) -> Check:
    """The fix verifier's verdict on a whole new env (a patched Dockerfile's): with `after`, every target
    resolves and each library that resolved with `before` loads the same file (model, then the loader)."""
    report, ctx = diagnose(facts, list(options.libs), dict(before), options.fail_on, options.frameworks)
    return check(ctx, report, UseEnv(tuple(sorted(after.items()))))


def scan(source: Source, options: ScanOptions) -> Report:
    """Open, scan and close one image."""
    view = open_view(source)
    try:
        return scan_view(view, oracle_for(view, source.ref, source.static), options)[0]
    finally:
        view.close()
