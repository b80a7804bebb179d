"""The cache reader against `ldconfig -p` on caches the real ldconfig writes, in all three formats, and
the ldconfig model against what ldconfig actually puts in a fresh cache."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldfix.image.pathwalk import Walker
from ldfix.image.rootfs import RootFS
from ldfix.loader.elfwrite import build_shared_object
from ldfix.loader.ldcache import NEW_MAGIC, OLD_MAGIC, CacheFormatError, parse_cache
from ldfix.loader.ldconf import libcmp, scan_dirs
from tests.layouts import generate, host_platform, materialize

LINE = re.compile(r"^\t(\S+) \(([^)]*)\) => (.*)$")


def _ldconfig_p(root: str) -> list[tuple[str, str]]:
    out = subprocess.run(["ldconfig", "-r", root, "-p"], capture_output=True, text=True, check=True).stdout
    return [(m.group(1), m.group(3)) for m in map(LINE.match, out.splitlines()) if m]


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["new", "compat", "old"])
def test_reader_matches_ldconfig_p_on_debian_rootfs_caches(fmt: str, tmp_path: object) -> None:
    root = str(tmp_path) + "/root"  # type: ignore[operator]
    os.makedirs(root + "/lib64")
    shutil.copy2("/lib64/ld-linux-x86-64.so.2", root + "/lib64/")
    for i, d in enumerate(["/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/opt/x"]):
        os.makedirs(root + d, exist_ok=True)
        for j in range(3):
            with open(f"{root}{d}/libt{i}{j}.so.{j + 1}", "wb") as fh:
                fh.write(build_shared_object(f"libt{i}{j}.so.{j + 1}"))
    os.makedirs(root + "/etc")
    with open(root + "/etc/ld.so.conf", "w") as fh:
        fh.write("/usr/local/lib\n/opt/x\n")
    subprocess.run(["ldconfig", "-r", root, "-c", fmt], check=True, capture_output=True)
    with open(root + "/etc/ld.so.cache", "rb") as fh:
        cache = parse_cache(fh.read())
    assert [(e.soname, e.path) for e in cache.entries] == _ldconfig_p(root)
    assert cache.fmt == fmt


@pytest.mark.root
def test_reader_matches_ldconfig_p_on_the_host_cache() -> None:
    with open("/etc/ld.so.cache", "rb") as fh:
        cache = parse_cache(fh.read())
    assert [(e.soname, e.path) for e in cache.entries] == _ldconfig_p("/")


@pytest.mark.root
@pytest.mark.parametrize("seed", range(40))
def test_ldconfig_model_predicts_a_fresh_cache(seed: int, tmp_path: object) -> None:
    lay = generate(seed)
    if lay.cache == "none" or lay.late_files or lay.late_conf:
        lay.cache, lay.late_files, lay.late_links, lay.late_conf = "new", {}, {}, {}
    lay.cache = "new"
    root = str(tmp_path) + "/root"  # type: ignore[operator]
    materialize(lay, root)
    walker = Walker(RootFS(root))
    _, model = scan_dirs(walker, host_platform(walker))
    with open(root + "/etc/ld.so.cache", "rb") as fh:
        real = parse_cache(fh.read())
    key = lambda c: sorted((e.soname, e.path, e.flags, e.hwcaps_subdir or "") for e in c.entries)  # noqa: E731
    assert key(model) == key(real), lay.describe()


def test_libcmp_orders_digit_runs_numerically() -> None:
    assert libcmp("libfoo.so.10", "libfoo.so.9") > 0
    assert libcmp("libfoo.so.1", "libfoo.so.1") == 0
    assert libcmp("libfoo.so", "libfoo.so.1") < 0


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_random_bytes_never_crash_the_reader(data: bytes) -> None:
    for prefix in (b"", NEW_MAGIC, OLD_MAGIC):
        with contextlib.suppress(CacheFormatError):
            parse_cache(prefix + data)


def test_truncated_caches_are_rejected_not_crashed() -> None:
    with pytest.raises(CacheFormatError):
        parse_cache(NEW_MAGIC + b"\0" * 4)
    with pytest.raises(CacheFormatError):
        parse_cache(OLD_MAGIC + b"\0\xff\xff\xff\xff")


def test_bogus_offsets_are_checked_only_where_the_search_looks() -> None:
    """glibc accepts a cache whose header is sound and checks each key or value offset only when its binary
    search reaches that slot (elf/dl-cache.c search_cache): a bogus key at a probed slot ends the search, a
    bogus value makes that entry unusable, and entries never probed do not matter."""
    import struct

    from ldfix.loader.ldcache import parse_cache

    strings = b"libb.so.1\0/l/libb.so.1\0liba.so.1\0/l/liba.so.1\0"
    def old(entries: list[tuple[int, int, int]]) -> bytes:
        head = b"ld.so-1.7.0\0" + struct.pack("<I", len(entries))
        return head + b"".join(struct.pack("<iII", *e) for e in entries) + strings

    # the table sorts in descending libcmp order: libb before liba
    good = parse_cache(old([(0x0303, 0, 10), (0x0303, 23, 33)]))
    assert good.lookup("liba.so.1", frozenset({0x0303}), ()).path == "/l/liba.so.1"  # type: ignore[union-attr]
    assert good.lookup("libb.so.1", frozenset({0x0303}), ()).path == "/l/libb.so.1"  # type: ignore[union-attr]
    broken_value = parse_cache(old([(0x0303, 0, 10), (0x0303, 23, 99999)]))
    assert broken_value.lookup("liba.so.1", frozenset({0x0303}), ()) is None
    assert broken_value.lookup("libb.so.1", frozenset({0x0303}), ()).path == "/l/libb.so.1"  # type: ignore[union-attr]
    broken_first_key = parse_cache(old([(0x0303, 99999, 10), (0x0303, 23, 33)]))
    assert broken_first_key.lookup("libb.so.1", frozenset({0x0303}), ()) is None  # the first probe gives up
