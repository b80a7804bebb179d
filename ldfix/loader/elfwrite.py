"""Writes minimal shared objects: an ELF header, one PT_LOAD, a dynamic section and its strings.

The loader can map and trace such a file without running any code. ldfix uses it to ask an image's own
`ld.so` how bare sonames resolve (a probe whose DT_NEEDED entries are the wanted names), and the tests use it
to build library layouts with any SONAME, NEEDED, RPATH and RUNPATH without a compiler.
"""

from __future__ import annotations

import struct

from ldfix.loader.elf import EM_386, EM_X86_64

PT_LOAD, PT_DYNAMIC, PT_GNU_STACK = 1, 2, 0x6474E551
DT_NULL, DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 1, 4, 5, 6, 10, 11
DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS_1 = 14, 15, 29, 0x6FFFFFFB


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


# Over 60 lines on purpose: the byte layout of one small ELF file, written top to bottom.
def build_shared_object(
    soname: str | None = None,
    needed: tuple[str, ...] | list[str] = (),
    rpath: str | None = None,
    runpath: str | None = None,
    elf_class: int = 64,
    machine: int | None = None,
    flags_1: int = 0,
) -> bytes:
    is64 = elf_class == 64
    if machine is None:
        machine = EM_X86_64 if is64 else EM_386
    ehsize, phentsize, dynent, syment = (64, 56, 16, 24) if is64 else (52, 32, 8, 16)
    word = "Q" if is64 else "I"
    sword = "q" if is64 else "i"

    strtab = bytearray(b"\0")

    def add(s: str) -> int:
        off = len(strtab)
        strtab.extend(s.encode("utf-8", "surrogateescape") + b"\0")
        return off

    dyn: list[tuple[int, int]] = [(DT_NEEDED, add(n)) for n in needed]
    if soname is not None:
        dyn.append((DT_SONAME, add(soname)))
    if rpath is not None:
        dyn.append((DT_RPATH, add(rpath)))
    if runpath is not None:
        dyn.append((DT_RUNPATH, add(runpath)))
    if flags_1:
        dyn.append((DT_FLAGS_1, flags_1))

    nph = 3
    str_off = ehsize + nph * phentsize
    sym_off = _align(str_off + len(strtab), 8)
    hash_off = sym_off + syment
    dyn_off = _align(hash_off + 16, 8)
    dyn += [(DT_STRTAB, str_off), (DT_STRSZ, len(strtab)), (DT_SYMTAB, sym_off), (DT_SYMENT, syment),
            (DT_HASH, hash_off), (DT_NULL, 0)]
    total = dyn_off + len(dyn) * dynent

    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1, 0, 0]) + b"\0" * 7
    ehdr = ident + struct.pack(
        f"<HHI{word}{word}{word}IHHHHHH", 3, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, nph, 0, 0, 0
    )
    if is64:
        def ph(t: int, flags: int, off: int, size: int, align: int) -> bytes:
            return struct.pack("<IIQQQQQQ", t, flags, off, off, off, size, size, align)
    else:
        def ph(t: int, flags: int, off: int, size: int, align: int) -> bytes:
            return struct.pack("<IIIIIIII", t, off, off, off, size, size, flags, align)
    phdrs = ph(PT_LOAD, 6, 0, total, 0x1000) + ph(PT_DYNAMIC, 6, dyn_off, len(dyn) * dynent, 8)
    phdrs += ph(PT_GNU_STACK, 6, 0, 0, 16)
    out = bytearray(total)
    out[0:ehsize] = ehdr
    out[ehsize:str_off] = phdrs
    out[str_off:str_off + len(strtab)] = strtab
    # symbol 0 is the all-zero null symbol; the SysV hash table has one bucket and one chain, both empty
    out[hash_off:hash_off + 16] = struct.pack("<IIII", 1, 1, 0, 0)
    for i, (tag, val) in enumerate(dyn):
        out[dyn_off + i * dynent: dyn_off + (i + 1) * dynent] = struct.pack(f"<{sword}{word}", tag, val)
    return bytes(out)
