"""Fix planning helpers and safe file writing."""
