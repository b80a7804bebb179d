"""Asking the image's own dynamic loader (optional: the model never depends on it)."""
