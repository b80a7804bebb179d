"""Images shared by the integration tests (built once per session, reused across runs by recipe hash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.images import CUDA_113_ENV, build_image, cuda_113_cudnn8_runtime, write_lib

WHEEL_CUDNN = "/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib"


@pytest.fixture(scope="session")
def replica() -> str:
    return build_image("ldfix-test/cuda:11.3.1-cudnn8-runtime", cuda_113_cudnn8_runtime, CUDA_113_ENV, "v2")


@pytest.fixture(scope="session")
def wheel_image() -> str:
    def customize(root: Path) -> None:
        cuda_113_cudnn8_runtime(root)
        write_lib(root, f"{WHEEL_CUDNN}/libcudnn.so.9", "libcudnn.so.9")

    return build_image("ldfix-test/cuda:wheel-path-missing", customize, CUDA_113_ENV, "v2")
