"""Installed frameworks and NVIDIA wheels, from the `*.dist-info` / `*.egg-info` metadata of every
site-packages and dist-packages directory in the image (system Pythons, /usr/local, venvs, conda envs)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ldfix.image.pathwalk import Walker
from ldfix.knowledge import Loading, loading


@dataclass(frozen=True)
class Dist:
    name: str  # normalized: lower case, runs of -_. as '-'
    version: str
    site: str  # the site-packages directory
    metadata: str  # the METADATA / PKG-INFO file


@dataclass(frozen=True)
class Install:
    """One framework installed in one site-packages."""

    loading: Loading
    dist: Dist
    location: str
    built_for_cuda: str | None
    wheels: tuple[Dist, ...]  # the nvidia-* wheels beside it


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


HEAD = 16 << 10  # the first read of a METADATA file: its headers end before a description that can be long


def _headers(text: str) -> dict[str, str]:
    ends = [i for i in (text.find("\n\n"), text.find("\n\r\n")) if i >= 0]
    # the headers end at the first blank line: the description after it is not split at all
    return _header_lines(text[:min(ends)] if ends else text)


def _header_lines(text: str) -> dict[str, str]:
    """The `Key: value` lines up to the first blank one (the first value of a key wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key and not key[0].isspace():
            out.setdefault(key.strip().lower(), value.strip())
    return out


def dists(walker: Walker, site: str, notes: list[str]) -> list[Dist]:
    out = []
    for entry in sorted(walker.listdir(site)):
        if not entry.endswith((".dist-info", ".egg-info")):
            continue
        meta = posixpath.join(site, entry, "METADATA" if entry.endswith(".dist-info") else "PKG-INFO")
        found = walker.stat(meta)
        if found is None:
            notes.append(f"{site}/{entry} has no {posixpath.basename(meta)}: a broken or partial install, skipped")
            continue
        try:
            data = walker.read(meta, 0, min(found[1].size, HEAD))
            if found[1].size > HEAD and b"\n\n" not in data and b"\n\r\n" not in data:
                data = walker.read(meta, 0, min(found[1].size, 1 << 20))
            text = data.decode("utf-8", "replace")
        except OSError as err:
            notes.append(f"{meta} is unreadable ({err}): skipped")
            continue
        head = _headers(text)
        if not head.get("name") or not head.get("version"):
            notes.append(f"{meta} names no package or version: skipped")
            continue
        out.append(Dist(normalize(head["name"]), head["version"], site, meta))
    return out


def _built_for(walker: Walker, site: str, how: Loading) -> str | None:
    if not how.version_file or not how.cuda_pattern:
        return None
    path = posixpath.join(site, how.version_file)
    found = walker.stat(path)
    if found is None:
        return None
    try:
        text = walker.read(path, 0, min(found[1].size, 1 << 20)).decode("utf-8", "replace")
    except OSError:
        return None
    m = re.search(how.cuda_pattern, text, re.M)
    return m.group(1) if m else None


SiteDists = dict[str, tuple[tuple[Dist, ...], tuple[str, ...]]]  # site -> its dists and the notes reading them gave


def detect(walker: Walker, sites: list[str], notes: list[str], known: SiteDists | None = None) -> list[Install]:
    """Every framework in every site-packages; a framework in several Pythons is reported once per Python.
    `known`: the dists of sites read before (an image snapshot keeps them: the large bench image has 128
    METADATA files); a site not in it is read and added."""
    found: list[Install] = []
    for site in sites:
        if known is not None and site in known:
            kept, said = known[site]
            here = list(kept)
            notes.extend(said)
        else:
            site_notes: list[str] = []
            here = dists(walker, site, site_notes)
            notes.extend(site_notes)
            if known is not None:
                known[site] = (tuple(here), tuple(site_notes))
        wheels = tuple(d for d in here if d.name.startswith("nvidia-"))
        by_name = {d.name: d for d in here}
        for how in loading():
            dist = next((by_name[p] for p in how.packages if p in by_name), None)
            if dist is None:
                continue
            location = posixpath.join(site, how.package_dir)
            if not walker.is_dir(location):
                notes.append(f"{dist.name} {dist.version} has metadata in {site} but no {how.package_dir}/ "
                             "directory: a partial install, its libraries are not checked")
                continue
            found.append(Install(how, dist, location, _built_for(walker, site, how), wheels))
    return found
