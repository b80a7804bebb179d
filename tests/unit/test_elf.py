from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ldfix.loader.elf import EM_AARCH64, EM_X86_64, ElfReadError, Verdict, probe, read_elf
from ldfix.loader.elfwrite import build_shared_object


def reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda off, n: data[off:off + n]


def test_reads_soname_needed_and_both_path_tags() -> None:
    data = build_shared_object("libx.so.1", ["liba.so.2", "libb.so.3"], rpath="/r", runpath="$ORIGIN", flags_1=0x800)
    info = read_elf(reader(data))
    assert (info.soname, info.needed, info.rpath, info.runpath) == ("libx.so.1", ("liba.so.2", "libb.so.3"), "/r",
                                                                    "$ORIGIN")
    assert info.nodeflib
    assert info.effective_rpath is None  # glibc drops RPATH when RUNPATH is present


def test_probe_mirrors_open_verify() -> None:
    assert probe(reader(b""), 64, EM_X86_64).error == "file too short"
    assert probe(reader(b"\x7fELF short"), 64, EM_X86_64).error == "file too short"
    assert probe(reader(b"x" * 100), 64, EM_X86_64).error == "invalid ELF header"
    assert probe(reader(build_shared_object("a", elf_class=32)), 64, EM_X86_64).verdict is Verdict.WRONG_CLASS
    assert probe(reader(build_shared_object("a", machine=EM_AARCH64)), 64, EM_X86_64).verdict is Verdict.WRONG_MACHINE
    assert probe(reader(build_shared_object("a")), 64, EM_X86_64).verdict is Verdict.OK


def test_reads_only_headers_and_dynamic_section() -> None:
    data = build_shared_object("libbig.so.1", ["libc.so.6"])
    reads: list[tuple[int, int]] = []

    def tracking(off: int, n: int) -> bytes:
        reads.append((off, n))
        return data[off:off + n]

    read_elf(tracking)
    assert sum(n for _, n in reads) < 4096


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=399))
@settings(max_examples=400)
def test_random_and_truncated_files_never_crash(noise: bytes, cut: int) -> None:
    good = build_shared_object("libz.so.1", ["liba.so.1"], rpath="/x")
    for data in (noise, b"\x7fELF\x02\x01\x01" + noise, good[:cut], good[:cut] + noise):
        try:
            result = probe(reader(data), 64, EM_X86_64)
        except ElfReadError:
            raise AssertionError("probe must turn read errors into a verdict") from None
        assert result.verdict in Verdict
