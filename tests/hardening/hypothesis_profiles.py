"""Hypothesis profiles of the fuzz tests: `ci` (bounded, the default) and `long`
(scripts/fuzz.sh). Selected by env HYPOTHESIS_PROFILE; used by the test modules that
import `PROFILE` (tests/conftest.py is the lead's; see the report for the lines to move).

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


# the settings of this folder's fuzz tests (a decorator); the session-wide profile is
# changed only when HYPOTHESIS_PROFILE asks for it (scripts/fuzz.sh), so importing this
# module never changes the budgets of other folders' tests in a CI run
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
if "HYPOTHESIS_PROFILE" in os.environ:
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
