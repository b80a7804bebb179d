"""ldfix: explains shared-library resolution in CUDA container images and writes verified fixes."""

__version__ = "0.1.0"
