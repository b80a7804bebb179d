"""ELF facts the loader cares about: the fixed-size records of the ELF format (as pyelftools describes them)
decoded with struct, machines named from pyelftools' tables.

Only the ELF header, the program headers, the dynamic segment and the strings it names are read, so a
1 GB library costs the same as a 1 MB one. This is the only module that imports pyelftools.

`probe` mirrors glibc's `open_verify` (elf/dl-load.c): which defects make the loader skip a candidate and
go on searching (wrong class, wrong machine) and which stop it with an error naming the file.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

EM_386 = 3
EM_X86_64 = 62
EM_AARCH64 = 183
EM_PPC64 = 21
EM_S390 = 22
ET_EXEC = 2
ET_DYN = 3
DF_1_NODEFLIB = 0x800
DF_1_PIE = 0x08000000
ELFOSABI_SYSV = 0
ELFOSABI_GNU = 3
LIBC_ABI_MAX = 6  # glibc's abi-tags: versions accepted with ELFOSABI_GNU are 0..LIBC_ABI_MAX-1

@lru_cache(maxsize=1)
def _machines() -> dict[int, str]:
    """e_machine values to pyelftools' names (imported only when a message names a machine: 35 ms)."""
    from elftools.elf.enums import ENUM_E_MACHINE

    return {v: k for k, v in ENUM_E_MACHINE.items() if isinstance(v, int)}

MAX_STRING = 64 * 1024
MAX_PHNUM = 4096
MAX_DYN = 8192


class Verdict(enum.Enum):
    OK = "ok"
    WRONG_CLASS = "wrong-class"  # skipped, search continues; final error names the class
    WRONG_MACHINE = "wrong-machine"  # skipped silently
    FATAL = "fatal"  # the loader stops with `error` naming the path


@dataclass(frozen=True)
class ElfInfo:
    elf_class: int  # 32 or 64
    little_endian: bool
    machine: int
    elf_type: int
    soname: str | None = None
    needed: tuple[str, ...] = ()
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0
    interp: str | None = None
    has_dynamic: bool = False

    @property
    def nodeflib(self) -> bool:
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def machine_name(self) -> str:
        return _machines().get(self.machine, str(self.machine))

    @property
    def effective_rpath(self) -> str | None:
        """glibc drops DT_RPATH when DT_RUNPATH is present (elf/get-dynamic-info.h)."""
        return None if self.runpath is not None else self.rpath


class ElfReadError(Exception):
    """Not an ELF file we can describe; `message` is the loader's wording where it has one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Probe:
    verdict: Verdict
    info: ElfInfo | None = None
    error: str | None = None
    elf_class: int | None = None


def probe(read: Reader, want_class: int, want_machine: int) -> Probe:
    """What glibc's open_verify decides for this file, for a loader of the given class and machine."""
    ehdr_size = 64 if want_class == 64 else 52
    head = read(0, 64)
    if len(head) < ehdr_size:
        return Probe(Verdict.FATAL, error="file too short")
    if head[:4] != b"\x7fELF":
        return Probe(Verdict.FATAL, error="invalid ELF header")
    cls = {1: 32, 2: 64}.get(head[4])
    if cls != want_class:
        return Probe(Verdict.WRONG_CLASS, error=f"wrong ELF class: ELFCLASS{cls or head[4]}", elf_class=cls)
    if head[5] != 1:  # every loader ldfix models is little-endian
        return Probe(Verdict.FATAL, error="ELF file data encoding not little-endian")
    if head[6] != 1:
        return Probe(Verdict.FATAL, error="ELF file version ident does not match current one")
    osabi, abiver = head[7], head[8]
    if osabi not in (ELFOSABI_SYSV, ELFOSABI_GNU):
        return Probe(Verdict.FATAL, error="ELF file OS ABI invalid")
    if not (abiver == 0 or (osabi == ELFOSABI_GNU and abiver < LIBC_ABI_MAX)):
        return Probe(Verdict.FATAL, error="ELF file ABI version invalid")
    if any(head[9:16]):
        return Probe(Verdict.FATAL, error="nonzero padding in e_ident")
    try:
        info = read_elf(read, head)
    except ElfReadError as err:
        return Probe(Verdict.FATAL, error=err.message)
    if info.machine != want_machine:
        return Probe(Verdict.WRONG_MACHINE, info=info, elf_class=cls)
    if info.elf_type not in (ET_DYN, ET_EXEC):
        return Probe(Verdict.FATAL, info=info, error="only ET_DYN and ET_EXEC can be loaded")
    return Probe(Verdict.OK, info=info, elf_class=cls)


def probe_any(read: Reader) -> Probe:
    """The verdict for whichever ELF class the file has, for no particular machine: `info` is set for any
    well-formed ELF (WRONG_MACHINE then only means "read without a machine to compare with")."""
    result = probe(read, 64, 0)
    if result.verdict is Verdict.WRONG_CLASS:
        result = probe(read, 32, 0)
    return result


@dataclass(frozen=True)
class Segments:
    """The ELF header fields and program headers the loader reads first."""

    cls: int
    little: bool
    machine: int
    elf_type: int
    loads: tuple[tuple[int, int, int, int], ...]  # (vaddr, offset, filesz, p_flags) of each PT_LOAD
    dynamic: tuple[int, int] | None  # (offset, filesz) of PT_DYNAMIC
    interp: tuple[int, int] | None  # (offset, filesz) of PT_INTERP


def segments(read: Reader, head: bytes | None = None) -> Segments:
    """Decode the ELF header and program headers; raises ElfReadError on anything malformed."""
    if head is None:
        head = read(0, 64)
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        raise ElfReadError("invalid ELF header" if len(head) >= 52 else "file too short")
    cls = 32 if head[4] == 1 else 64
    little = head[5] == 1
    endian = "<" if little else ">"
    # the header's fixed layout (Elf64_Ehdr / Elf32_Ehdr after e_ident), unpacked in one call
    fmt = endian + ("HHIQQQIHHHHHH" if cls == 64 else "HHIIIIIHHHHHH")
    if len(head) < 16 + struct.calcsize(fmt):
        raise ElfReadError("file too short")
    (etype, machine, version, _entry, phoff, _shoff, _flags, _ehsize, e_phentsize, phnum, *_rest) = \
        struct.unpack_from(fmt, head, 16)
    if version != 1:
        raise ElfReadError("ELF file version does not match current one")
    phentsize = 56 if cls == 64 else 32
    if e_phentsize != phentsize:
        raise ElfReadError("ELF file's phentsize not the expected size")
    if phnum > MAX_PHNUM:
        raise ElfReadError("too many program headers")
    raw = read(phoff, phnum * phentsize)
    if len(raw) < phnum * phentsize:
        raise ElfReadError("cannot read file data")
    loads: list[tuple[int, int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    interp_at: tuple[int, int] | None = None
    # the tables are arrays of the fixed-size records pyelftools describes (sizes checked above); decoding them
    # in bulk with struct is what keeps a scan of thousands of files fast
    for rec in struct.iter_unpack(endian + ("IIQQQQQQ" if cls == 64 else "IIIIIIII"), raw[:phnum * phentsize]):
        ptype = rec[0]
        if cls == 64:
            flags, offset, vaddr, filesz = rec[1], rec[2], rec[3], rec[5]
        else:
            offset, vaddr, filesz, flags = rec[1], rec[2], rec[4], rec[6]
        if ptype == 1:  # PT_LOAD
            loads.append((vaddr, offset, filesz, flags))
        elif ptype == 2:  # PT_DYNAMIC
            dynamic = (offset, filesz)
        elif ptype == 3:  # PT_INTERP
            interp_at = (offset, filesz)
    return Segments(cls, little, machine, etype, tuple(loads), dynamic, interp_at)


# Over 60 lines on purpose: one pass over the dynamic section in file order, each check citing the glibc
# code it mirrors.
def read_elf(read: Reader, head: bytes | None = None) -> ElfInfo:
    """Decode the headers and dynamic section; raises ElfReadError on anything malformed."""
    seg = segments(read, head)
    cls, little, machine, etype, dynamic, interp_at = (seg.cls, seg.little, seg.machine, seg.elf_type,
                                                       seg.dynamic, seg.interp)
    endian = "<" if little else ">"
    loads = [(vaddr, offset, filesz) for vaddr, offset, filesz, _ in seg.loads]
    interp = None
    if interp_at is not None:
        interp = read(interp_at[0], min(interp_at[1], 4096)).split(b"\0", 1)[0].decode("utf-8", "replace")
    if dynamic is None:
        return ElfInfo(cls, little, machine, etype, interp=interp)
    dynsize = 16 if cls == 64 else 8  # Elf64_Dyn / Elf32_Dyn
    count = min(dynamic[1] // dynsize, MAX_DYN)
    rawdyn = read(dynamic[0], count * dynsize)
    tags: list[tuple[int, int]] = []
    usable = len(rawdyn) - len(rawdyn) % dynsize
    for tag, val in struct.iter_unpack(endian + ("qQ" if cls == 64 else "iI"), rawdyn[:usable]):
        if tag == 0:  # DT_NULL
            break
        tags.append((tag, val))
    strtab = next((v for t, v in tags if t == 5), None)
    strsz = next((v for t, v in tags if t == 10), None)

    def string(offset: int) -> str:
        if strtab is None:
            raise ElfReadError("dynamic section has no DT_STRTAB")
        if strsz is not None and offset >= strsz:
            raise ElfReadError("dynamic string offset out of range")
        fileoff = _vaddr_to_offset(loads, strtab + offset)
        if fileoff is None:
            raise ElfReadError("DT_STRTAB is outside every PT_LOAD")
        chunk = b""
        size = 256
        while True:
            chunk = read(fileoff, size)
            end = chunk.find(b"\0")
            if end >= 0:
                return chunk[:end].decode("utf-8", "surrogateescape")
            if len(chunk) < size or size >= MAX_STRING:
                raise ElfReadError("unterminated dynamic string")
            size *= 4

    # the strings are read in file order (a stream that passed a string cannot go back for it: patchelf
    # puts DT_RPATH's string after the others) and used in tag order, each error where its tag is
    strings: dict[int, str | ElfReadError] = {}
    for val in sorted({val for tag, val in tags if tag in (1, 14, 15, 29)}):
        try:
            strings[val] = string(val)
        except ElfReadError as err:
            strings[val] = err

    def text(val: int) -> str:
        got = strings[val]
        if isinstance(got, ElfReadError):
            raise got
        return got

    soname = None
    needed: list[str] = []
    rpath = runpath = None
    flags_1 = 0
    for tag, val in tags:
        if tag == 1:
            needed.append(text(val))
        elif tag == 14:
            soname = text(val)
        elif tag == 15:
            rpath = text(val) if rpath is None else rpath + ":" + text(val)
        elif tag == 29:
            runpath = text(val) if runpath is None else runpath + ":" + text(val)
        elif tag == 0x6FFFFFFB:
            flags_1 = val
    return ElfInfo(cls, little, machine, etype, soname, tuple(needed), rpath, runpath, flags_1, interp, True)


def _vaddr_to_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int | None:
    for pvaddr, poff, pfilesz in loads:
        if pvaddr <= vaddr < pvaddr + pfilesz:
            return vaddr - pvaddr + poff
    return None


def machine_for_arch(arch: str) -> tuple[int, int]:
    """(ELF class, e_machine) of the loader for a Docker architecture name."""
    table = {
        "amd64": (64, EM_X86_64), "x86_64": (64, EM_X86_64),
        "arm64": (64, EM_AARCH64), "aarch64": (64, EM_AARCH64),
        "ppc64le": (64, EM_PPC64), "s390x": (64, EM_S390),
        "386": (32, EM_386), "i386": (32, EM_386),
    }
    return table.get(arch, (64, EM_X86_64))


__all__ = ["ElfInfo", "ElfReadError", "Probe", "Segments", "Verdict", "machine_for_arch", "probe",
           "read_elf", "segments"]
