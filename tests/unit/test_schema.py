"""The shipped JSON Schemas are valid schemas, accept the contract's own example, and reject what the
contract forbids."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator, ValidationError

from ldfix.schema import load
from tests.schema import validate_patch, validate_scan

EXAMPLE = {
    "schema_version": 1,
    "tool": {"name": "ldfix", "version": "0.1.0"},
    "image": {"ref": "nvidia/cuda:11.3.1-cudnn8-runtime-ubuntu20.04", "id": "sha256:abc", "platform": "linux/amd64",
              "env": {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"}, "cuda_version": "11.3.1",
              "cudnn_version": "8.2.0.53"},
    "libraries": [{"soname": "libcudnn.so.8", "status": "resolved", "path": "/usr/lib/x86_64-linux-gnu/libcudnn.so.8",
                   "via": "ld_so_cache", "candidates": ["/usr/lib/x86_64-linux-gnu/libcudnn.so.8.2.0"],
                   "verified": True}],
    "findings": [{"code": "PATH_MISSING", "severity": "error", "soname": "libcudart.so.11.0",
                  "message": "libcudart.so.11.0 exists at /opt/cuda/lib64 but no search path reaches it",
                  "paths": ["/opt/cuda/lib64/libcudart.so.11.0"]}],
    "fix": {"ld_library_path_add": ["/opt/cuda/lib64"],
            "env_line": "ENV LD_LIBRARY_PATH=\"/opt/cuda/lib64${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}\"",
            "dockerfile": "FROM sha256:abc\nENV LD_LIBRARY_PATH=\"/opt/cuda/lib64${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}\"\n",
            "verified": True},
}


@pytest.mark.parametrize("name", ["scan-report", "patch-report"])
def test_schemas_are_valid(name: str) -> None:
    Draft202012Validator.check_schema(load(name))


def test_contract_examples_validate() -> None:
    validate_scan(EXAMPLE)
    validate_patch({"schema_version": 1, "tool": {"name": "ldfix", "version": "0.1.0"},
                    "dockerfile": {"path": "Dockerfile", "target_stage": "final", "base_image": "x:1"},
                    "findings": [{"code": "LDPATH_BAD", "severity": "error", "file": "Dockerfile", "line": 11,
                                  "message": "m"}],
                    "scan": EXAMPLE, "changed": True, "diff": "--- a/Dockerfile\n+++ b/Dockerfile\n"})


@pytest.mark.parametrize(("where", "value"), [
    (("libraries", 0, "status"), "ok"), (("libraries", 0, "via"), "magic"), (("findings", 0, "code"), "NEW_CODE"),
    (("findings", 0, "severity"), "fatal"), (("schema_version",), 2), (("fix", "ld_library_path_add", 0), "rel/dir"),
])
def test_schema_rejects(where: tuple[object, ...], value: object) -> None:
    bad = copy.deepcopy(EXAMPLE)
    node: object = bad
    for key in where[:-1]:
        node = node[key]  # type: ignore[index]
    node[where[-1]] = value  # type: ignore[index]
    with pytest.raises(ValidationError):
        validate_scan(bad)
