"""Real framework and NVIDIA wheels from PyPI for the framework tests: downloaded once into a shared cache
(`pip download --no-deps`, never committed) and unpacked into an image's site-packages, whole or only the
members a test needs (framework installs are large; CI keeps its share small)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

WHEEL_CACHE = Path(os.environ.get("LDFIX_WHEEL_CACHE", Path.home() / ".cache" / "ldfix-tests" / "wheels"))
SITE = "usr/local/lib/python3.11/dist-packages"


def wheel(spec: str) -> Path:
    """The wheel for `NAME==VERSION` (or the newest of NAME), downloaded once."""
    name, _, version = spec.partition("==")
    prefix = name.replace("-", "_") + "-" + (version + "-" if version else "")
    have = sorted(WHEEL_CACHE.glob(prefix + "*.whl"))
    if not have:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "-d", str(WHEEL_CACHE), spec], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip download {spec} failed: {proc.stderr[-1000:]}")
        have = sorted(WHEEL_CACHE.glob(prefix + "*.whl"))
    if not have:
        raise RuntimeError(f"pip download {spec} left no {prefix}*.whl in {WHEEL_CACHE}")
    return have[-1]


def install(spec: str, root: Path, keep: Callable[[str], bool] | None = None, site: str = SITE) -> list[str]:
    """Unpack a wheel into ROOT's site-packages (members `keep` accepts; metadata always); the names written."""
    written = []
    with zipfile.ZipFile(wheel(spec)) as zf:
        for item in zf.infolist():
            name = item.filename
            if item.is_dir() or not (keep is None or keep(name) or ".dist-info/" in name):
                continue
            target = root / site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(item) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            written.append(name)
    return written


def libraries_only(name: str) -> bool:
    return ".so" in name.rsplit("/", 1)[-1] or name.endswith(("version.py", "build_info.py",
                                                               "build_and_package_info.py", "__init__.py"))
