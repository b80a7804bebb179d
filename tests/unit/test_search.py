"""Loader rules on in-memory images, named after the rule they pin."""

from __future__ import annotations

from ldfix.image.memory import MemoryFS
from ldfix.image.pathwalk import Walker
from ldfix.loader.elf import read_elf
from ldfix.loader.elfwrite import build_shared_object as so
from ldfix.loader.ldcache import CacheEntry, LdCache
from ldfix.loader.platform import LoaderPlatform
from ldfix.loader.search import Searcher, SearchStep
from ldfix.loader.tree import load


def run(fs: MemoryFS, main: bytes, env: dict[str, str] | None = None, cache: LdCache | None = None,
        cwd: str = "/"):  # type: ignore[no-untyped-def]
    fs.add_file("/app/main.so", main)
    walker = Walker(fs)
    searcher = Searcher(walker, LoaderPlatform(), env or {}, cwd, cache)
    return load(searcher, "/app/main.so", read_elf(lambda o, n: fs.read("/app/main.so", o, n)))


def test_rpath_over_env_over_runpath() -> None:
    fs = MemoryFS()
    for d in ("/r", "/e", "/u"):
        fs.add_file(f"{d}/libx.so.1", so("libx.so.1"))
    assert run(fs, so(None, ["libx.so.1"], rpath="/r"), {"LD_LIBRARY_PATH": "/e"}).listing() == [("libx.so.1", "/r/libx.so.1")]
    assert run(fs, so(None, ["libx.so.1"], runpath="/u"), {"LD_LIBRARY_PATH": "/e"}).listing() == [("libx.so.1", "/e/libx.so.1")]
    assert run(fs, so(None, ["libx.so.1"], runpath="/u")).listing() == [("libx.so.1", "/u/libx.so.1")]


def test_runpath_is_not_inherited_but_rpath_is() -> None:
    fs = MemoryFS()
    fs.add_file("/d/liba.so.1", so("liba.so.1", ["libb.so.1"]))
    fs.add_file("/d/libb.so.1", so("libb.so.1"))
    assert run(fs, so(None, ["liba.so.1"], runpath="/d")).listing() == [("liba.so.1", "/d/liba.so.1"), ("libb.so.1", None)]
    assert run(fs, so(None, ["liba.so.1"], rpath="/d")).listing() == [("liba.so.1", "/d/liba.so.1"),
                                                                       ("libb.so.1", "/d/libb.so.1")]


def test_empty_ld_library_path_entry_searches_the_working_directory() -> None:
    fs = MemoryFS()
    fs.add_file("/work/libw.so.1", so("libw.so.1"))
    closure = run(fs, so(None, ["libw.so.1"]), {"LD_LIBRARY_PATH": "/x:"}, cwd="/work")
    assert closure.listing() == [("libw.so.1", "libw.so.1")]
    assert run(fs, so(None, ["libw.so.1"]), {"LD_LIBRARY_PATH": ""}, cwd="/work").listing() == [("libw.so.1", None)]


def test_semicolon_separates_ld_library_path_and_hash_is_part_of_the_path() -> None:
    fs = MemoryFS()
    fs.add_file("/b/libq.so.1", so("libq.so.1"))
    assert run(fs, so(None, ["libq.so.1"]), {"LD_LIBRARY_PATH": "/a;/b"}).listing() == [("libq.so.1", "/b/libq.so.1")]
    assert run(fs, so(None, ["libq.so.1"]), {"LD_LIBRARY_PATH": "/b#"}).listing() == [("libq.so.1", None)]


def test_cache_then_default_dirs_and_wrong_class_is_skipped() -> None:
    fs = MemoryFS()
    fs.add_file("/opt/c/libk.so.1", so("libk.so.1", elf_class=32))
    fs.add_file("/usr/lib/libk.so.1", so("libk.so.1"))
    cache = LdCache("model", [CacheEntry("libk.so.1", "/opt/c/libk.so.1", 0x0303)])
    closure = run(fs, so(None, ["libk.so.1"]), cache=cache)
    res = closure.first("libk.so.1")
    assert res is not None and res.step is SearchStep.DEFAULT_DIRS and res.path == "/usr/lib/libk.so.1"
    assert [a.outcome.value for a in res.tried if a.step is SearchStep.LD_SO_CACHE] == ["wrong-class"]


def test_file_too_short_stops_the_loader() -> None:
    fs = MemoryFS()
    fs.add_file("/usr/lib/libs.so.1", b"\x7fELF")
    closure = run(fs, so(None, ["libs.so.1"]))
    assert closure.fatal is not None and closure.fatal.error == "/usr/lib/libs.so.1: file too short"


def test_symlink_loop_is_a_miss_not_a_crash() -> None:
    fs = MemoryFS()
    fs.add_symlink("/usr/lib/libl.so.1", "libl.so.2")
    fs.add_symlink("/usr/lib/libl.so.2", "libl.so.1")
    assert run(fs, so(None, ["libl.so.1"])).listing() == [("libl.so.1", None)]
