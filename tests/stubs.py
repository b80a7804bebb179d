"""Stub shared libraries compiled by gcc, with a chosen SONAME, DT_NEEDED list and RPATH or RUNPATH.

These are real toolchain output (relocations, symbol versions, a .text section), unlike the minimal objects
ldfix's own ELF writer makes, so tests that use them show the model reading what a linker writes. A needed
soname is recorded the way a linker records it: by linking against a placeholder library that carries that
SONAME; the placeholder itself is thrown away."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def gcc_available() -> bool:
    return shutil.which("gcc") is not None


def compile_stub(out: Path, soname: str | None, needed: tuple[str, ...] = (), rpath: str | None = None,
                 runpath: str | None = None, symbol: str | None = None) -> Path:
    """Compile `out` (a shared object) with `-Wl,-soname,<soname>`, one DT_NEEDED per `needed` (in order), and
    DT_RPATH (`--disable-new-dtags`) or DT_RUNPATH (`--enable-new-dtags`). gcc adds `libc.so.6` last.
    `soname=None` makes an object without DT_SONAME (a probe, like a plugin loaded by path)."""
    if rpath is not None and runpath is not None:
        raise ValueError("a linker writes RPATH or RUNPATH, not both")
    out.parent.mkdir(parents=True, exist_ok=True)
    sym = symbol or "ldfix_stub_" + "".join(c if c.isalnum() else "_" for c in soname or out.name)
    with tempfile.TemporaryDirectory(prefix="ldfix-stub-") as tmp:
        src = Path(tmp) / "stub.c"
        src.write_text(f"int {sym}(void) {{ return 42; }}\n")
        args = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), "-Wl,--no-as-needed"]
        if soname is not None:
            args.append(f"-Wl,-soname,{soname}")
        for i, dep in enumerate(needed):
            if dep in ("libc.so.6",):
                continue  # gcc links libc itself
            placeholder = Path(tmp) / f"dep{i}.so"
            dep_src = Path(tmp) / f"dep{i}.c"
            dep_src.write_text(f"int ldfix_dep_{i}(void) {{ return {i}; }}\n")
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(placeholder), str(dep_src), f"-Wl,-soname,{dep}"],
                           check=True, capture_output=True)
            args.append(str(placeholder))
        if rpath is not None:
            args += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{rpath}"]
        if runpath is not None:
            args += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{runpath}"]
        subprocess.run(args, check=True, capture_output=True)
    return out




def host_glibc_root(root: Path) -> None:
    """Copy this machine's loader and libc (just those two files) into `root` at the paths Debian uses, so a
    shell-less glibc image can be made from stubs alone."""
    for src in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        real = os.path.realpath(src)
        dest = root / src.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, dest)
    (root / "etc").mkdir(exist_ok=True)
