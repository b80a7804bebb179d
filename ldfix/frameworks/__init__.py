"""The frameworks installed in an image (from Python package metadata) and what each of them really loads,
judged from its own objects: their DT_NEEDED, DT_RPATH and DT_RUNPATH, the names they dlopen, and the wheel
libraries their Python code preloads."""
