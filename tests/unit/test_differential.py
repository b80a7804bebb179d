"""The model against the real glibc loader on generated layouts (seeded, reproducible).

Each case builds a root filesystem with the host's ld.so, runs the real loader in a chroot in trace mode
and compares its whole listing (names, paths, order, 'not found' lines, fatal errors) with the model's.
LDFIX_DIFF_CASES raises the count (the bench and slow runs use thousands).
"""

from __future__ import annotations

import os

import pytest

from tests.layouts import generate, materialize, run_model, run_real

CASES = int(os.environ.get("LDFIX_DIFF_CASES", "320"))
# seeds beyond the default range that once disagreed, kept as regressions: 794 is an old-format cache that
# ldconfig 2.36 wrote with garbage offsets in all but its first entry; glibc still finds that entry
REGRESSIONS = [794]


@pytest.mark.root
@pytest.mark.parametrize("seed", sorted({*range(CASES), *REGRESSIONS}))
def test_model_agrees_with_real_loader(seed: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    lay = generate(seed)
    root = str(tmp_path_factory.mktemp(f"layout{seed}") / "root")
    materialize(lay, root)
    real, real_fatal = run_real(root, lay)
    _, model, model_fatal = run_model(root, lay)
    assert (model_fatal, model if not model_fatal else None) == (real_fatal, real if not real_fatal else None), \
        lay.describe()
