"""The registry: every finding code's rule, in the order findings are reported. The causes (rules with
`explain`) are tried in this order for each name that does not resolve; the first that applies wins
(ScanContext.classify)."""

from __future__ import annotations

from ldfix.diagnose.rules import (
    compat,
    dockerfile_syntax,
    ldpath_bad,
    lib_absent,
    no_dev_symlink,
    no_driver,
    path_missing,
    shadowed,
    stale_cache,
    stub,
    transitive,
    version_skew,
    wrong_arch,
    wrong_major,
)
from ldfix.diagnose.rules.base import Rule

REGISTRY: tuple[Rule, ...] = (
    wrong_arch.RULE,
    stale_cache.RULE,
    path_missing.RULE,
    no_dev_symlink.RULE,
    wrong_major.RULE,
    lib_absent.RULE,
    transitive.RULE,
    compat.RULE,
    stub.RULE,
    no_driver.RULE,
    ldpath_bad.RULE,
    shadowed.RULE,
    version_skew.RULE,
    dockerfile_syntax.RULE,
)
BY_CODE: dict[str, Rule] = {r.code: r for r in REGISTRY}

