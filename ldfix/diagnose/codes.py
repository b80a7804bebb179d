"""The finding registry: every stable code with its severity, meaning, detection and fix (for `explain`,
SARIF rules and the docs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    severity: str
    title: str
    detect: str
    fix: str
    example: str


CODES: dict[str, Code] = {c.code: c for c in [
    Code("PATH_MISSING", "error", "a file with the wanted SONAME exists, but no search step reaches it",
         "The loader model searches RPATH, LD_LIBRARY_PATH, RUNPATH, ld.so.cache and the default directories "
         "from the requester; every path it tried is listed. A file whose ELF SONAME matches lies elsewhere.",
         "Prepend the candidate's directory with ENV LD_LIBRARY_PATH=\"<dir>${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}\"; "
         "for system library directories the cache does not cover (/usr/lib64 on Debian) an ld.so.conf.d file "
         "plus RUN ldconfig instead. Either fix is re-checked so it resolves every target and shadows nothing.",
         "pip's nvidia/cudnn/lib/libcudnn.so.9 with nothing pointing at site-packages/nvidia/cudnn/lib"),
    Code("LIB_ABSENT", "error", "no file anywhere in the image has the wanted SONAME",
         "No ELF file in the image has that SONAME or that file name.",
         "Install the library for the image's CUDA major (apt libcublas-X-Y, libcudnn8/9, pip nvidia-*), or "
         "use a base tag that ships it (-runtime has the math libraries, cudnn tags have cuDNN). No path change helps.",
         "libcublas.so.11 in an nvidia/cuda:11.3.1-base image"),
    Code("WRONG_MAJOR", "error", "the wanted SONAME is absent but another major version of it is present",
         "libX.so.N is wanted; only libX.so.M files exist (compared by SONAME).",
         "Use the framework build for the image's CUDA/cuDNN, or install the wanted major side by side. "
         "Never symlink one major to another: the ABI differs.",
         "TensorFlow 2.4 wants libcusolver.so.10 on a CUDA 11.3 image that ships libcusolver.so.11"),
    Code("STALE_CACHE", "error", "a configured directory holds the library but /etc/ld.so.cache does not list it",
         "ldfix builds the cache ldconfig would write from the image's ld.so.conf and files and compares it "
         "with /etc/ld.so.cache.",
         "RUN ldconfig after the step that added the libraries (as root).",
         "COPY libfoo.so.1 /usr/local/lib/ with no RUN ldconfig afterwards"),
    Code("NO_DEV_SYMLINK", "warning", "an unversioned name (libcudnn.so) is wanted and only versioned files exist",
         "The wanted name has no version suffix and libX.so.N exists.",
         "RUN ln -s libX.so.N <same dir>/libX.so (same major, same directory), or install the -dev package.",
         "cuDNN 8 dlopens libnvrtc.so; runtime images ship only libnvrtc.so.11.2"),
    Code("SHADOWED", "warning", "several files provide the SONAME and the loader picks another than intended",
         "Several candidates share the SONAME; the winner is outside the requester's own RPATH/RUNPATH "
         "directories while a copy inside them exists.",
         "Remove the duplicate, or put the intended directory first.",
         "LD_LIBRARY_PATH=/usr/local/cuda/lib64 beats a wheel's RUNPATH $ORIGIN copy of libcublasLt.so.12"),
    Code("TRANSITIVE", "error", "a resolved library's own dependency does not resolve",
         "The dependency closure is resolved from each intermediate library's point of view.",
         "Make the missing dependency reachable (PATH_MISSING fix) or install it for the same CUDA major.",
         "libcusolver.so.11 (a CUDA 12 build) NEEDs libnvJitLink.so.12"),
    Code("COMPAT", "warning", "a CUDA forward-compatibility directory (.../compat) is on a search path",
         "An LD_LIBRARY_PATH entry or ld.so.conf directory ends in compat, or libcuda resolves into one.",
         "Remove it; the NVIDIA container toolkit decides about forward compatibility at run time.",
         "ENV LD_LIBRARY_PATH=/usr/local/cuda/compat:$LD_LIBRARY_PATH"),
    Code("STUB", "error", "a stub directory (.../stubs) is on a run-time search path",
         "An LD_LIBRARY_PATH entry or ld.so.conf directory is a stubs directory, or libcuda resolves into one.",
         "Remove it from run-time paths; stubs belong on LIBRARY_PATH for linking only.",
         "ENV LD_LIBRARY_PATH=/usr/local/cuda/lib64/stubs"),
    Code("LDPATH_BAD", "warning", "an LD_LIBRARY_PATH entry is empty, relative, missing, a file, or "
        "has stray characters",
         "Each element of the effective LD_LIBRARY_PATH is checked against the image filesystem.",
         "Rewrite the value with absolute directories and the ${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}} guard.",
         "ENV LD_LIBRARY_PATH $LD_LIBRARY_PATH:/usr/lib/x86_64-linux-gnu#"),
    Code("WRONG_ARCH", "error", "a candidate has the wrong ELF class or machine for the image",
         "The only files with the wanted SONAME have another ELF class or e_machine than the image's loader.",
         "Use the image for the right platform or install the libraries for its architecture.",
         "an aarch64 libcudnn.so.8 in an amd64 image"),
    Code("NO_DRIVER", "info", "driver libraries (libcuda.so.1...) come from the host at run time",
         "libcuda.so.1, libnvidia-ml.so.1 and the like are injected by the NVIDIA container runtime.",
         "Run with --gpus all (or --runtime=nvidia, CDI, or the Kubernetes device plugin); never bake them in.",
         "libcuda.so.1 absent from every nvidia/cuda image"),
    Code("DOCKERFILE_SYNTAX", "error", "the Dockerfile has an error Docker would reject",
         "ldfix's own BuildKit-faithful parser (continuations, heredocs, directives, instruction names).",
         "Fix the reported line; ldfix patch does not edit such a file.",
         "RUN a \\   #comment (text after the continuation ends the RUN; the next line is an unknown instruction)"),
]}
