"""A pure model of the glibc dynamic loader over an image filesystem."""
