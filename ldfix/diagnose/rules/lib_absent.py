from __future__ import annotations

from ldfix.diagnose.context import ScanContext, describe_tried
from ldfix.diagnose.finding import Finding, Severity
from ldfix.diagnose.rules.base import Rule
from ldfix.loader.search import Resolution

OPTIONAL = ("libnvinfer", "libnvinfer_plugin")  # TF-TRT: TensorFlow only warns when TensorRT is missing


def explain(ctx: ScanContext, name: str, res: Resolution) -> Finding:
    optional = name.partition(".so")[0] in OPTIONAL
    return RULE.finding(f"no file in the image has the SONAME {name}", Severity.WARNING if optional else None,
                        soname=name, evidence=describe_tried(res),
                        fix="install the library for the image's CUDA major, or use a base tag that ships it")


RULE = Rule(
    "LIB_ABSENT", Severity.ERROR, "no file anywhere in the image has the wanted SONAME",
    "No ELF file in the image has that SONAME or that file name. A warning for optional libraries "
    "(TensorRT's libnvinfer, which TensorFlow only warns about).",
    "Install the library for the image's CUDA major (apt libcublas-X-Y, libcudnn8/9, pip nvidia-*), or "
    "use a base tag that ships it (-runtime has the math libraries, cudnn tags have cuDNN). No path change helps.",
    "libcublas.so.11 in an nvidia/cuda:11.3.1-base image", explain=explain)
