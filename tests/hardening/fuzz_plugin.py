"""pytest plugin for long fuzz campaigns (scripts/fuzz.sh, never in CI): multiplies the
`max_examples` of every hypothesis test by env GOBLOCK_FUZZ_SCALE (default 20).

Needed because tests pin `max_examples` with `@settings(...)`, which beats any profile;
hypothesis reads the settings it stored on the test function when the test runs, so
replacing them at collection time takes effect.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    scale = int(os.environ.get("GOBLOCK_FUZZ_SCALE", "20"))
    for item in items:
        fn = getattr(item, "obj", None)
        inner = getattr(fn, "hypothesis", None)
        target = getattr(inner, "inner_test", None) and fn
        current = getattr(target, "_hypothesis_internal_use_settings", None)
        if current is None:
            continue
        target._hypothesis_internal_use_settings = settings(
            current,
            max_examples=current.max_examples * scale,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
