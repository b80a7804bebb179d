"""Access to an image's filesystem and config, whatever it is stored in."""
