"""Read a framework wheel and print the knowledge/frameworks.json row it supports: the CUDA-family sonames
its requesters (knowledge/loading.json) name in DT_NEEDED, the names its `dlopen_from` object carries as
strings (what it dlopens), and the CUDA version its build files or metadata state. A maintainer's tool for
adding a release to the data from the real binary; the row's `source` says which wheel it was read from.

    python3 scripts/framework_rows.py FRAMEWORK WHEEL [WHEEL...]

Nothing is guessed: a field the wheel does not state is printed as null."""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldfix.knowledge import cuda, loading
from ldfix.loader.elf import read_elf

SONAME = re.compile(rb"lib[A-Za-z0-9_+-]+\.so(?:\.\d+)+")
CUDA_FILES = ("capi/build_and_package_info.py", "python/platform/build_info.py", "cupy/.data/_wheel.json",
              "torch/version.py")


def row(framework: str, wheels: list[Path]) -> dict[str, object]:
    how = next(x for x in loading() if x.framework == framework)
    k = cuda()
    needed: list[str] = []
    dlopened: list[str] = []
    cuda_version = None
    version = None
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.endswith(".dist-info/METADATA") and version is None:
                    meta = zf.read(name).decode()
                    m = re.search(r"^Version: (\S+)", meta, re.M)
                    version = m.group(1) if m else None
                if name.endswith(CUDA_FILES) and cuda_version is None:
                    text = zf.read(name).decode("utf-8", "replace")
                    pattern = how.cuda_pattern or r"['\"]cuda['\"]\s*:\s*['\"]([0-9.x]+)['\"]"
                    m = re.search(pattern, text, re.M) or re.search(r"['\"]cuda['\"]\s*:\s*['\"]([0-9.x]+)", text)
                    cuda_version = m.group(1) if m else None
                if not any(fnmatch.fnmatch(name, p) for p in how.requesters):
                    continue
                data = zf.read(name)
                info = read_elf(lambda o, n, d=data: d[o:o + n])
                needed += [n for n in info.needed if k.is_cuda_family(n) and n not in needed]
                if how.dlopen_from and fnmatch.fnmatch(name, how.dlopen_from):
                    for s in SONAME.findall(data):
                        text = s.decode()
                        if k.is_cuda_family(text) and text not in dlopened and text not in needed:
                            dlopened.append(text)
    return {"framework": framework, "version": version, "cuda": cuda_version, "needed": needed,
            "dlopened": dlopened, "source": "read from " + ", ".join(w.name for w in wheels)}


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(json.dumps(row(sys.argv[1], [Path(p) for p in sys.argv[2:]]), indent=1))
