"""zstd layers through the standard library's `compression.zstd` (Python 3.14+) or its backport."""

from __future__ import annotations

from typing import Any


def decompressor() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
    return zstd.ZstdDecompressor()
