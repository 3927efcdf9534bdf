"""Hypothesis profiles of the fuzz tests: `ci` (bounded, the default) and `long`
(scripts/fuzz.sh). Selected by env HYPOTHESIS_PROFILE; loaded by the test modules that
use them (tests/conftest.py is the lead's; see the report for the 3 lines to move here).

Tests elsewhere pin `max_examples` in their own `@settings`, which a profile cannot
override; `fuzz_plugin.py` scales those for the long campaigns.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long",
    max_examples=2_000,  # x GOBLOCK_FUZZ_SCALE under scripts/fuzz.sh
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def load() -> None:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


load()
