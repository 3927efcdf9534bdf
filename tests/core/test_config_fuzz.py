"""The config loader on arbitrary input: a ConfigError naming the problem, never a crash."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_goblock.component import default_registry
from otel_goblock.config import ConfigError
from otel_goblock.config.loader import load_text
from otel_goblock.service_config import build_config

REGISTRY = default_registry()
TYPES = ["otlp", "batch", "memory_limiter", "file", "debug", "otlp_grpc", "health_check", "x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["1s", "200ms", "fast", "${env:X}", "$$"]),
)
trees = st.recursive(
    scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)
    ),
    max_leaves=20,
)
components = st.dictionaries(
    st.builds(lambda t, n: t + n, st.sampled_from(TYPES), st.sampled_from(["", "/a", "/"])),
    trees,
    max_size=3,
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "receivers": components,
        "processors": components,
        "exporters": components,
        "extensions": components,
        "service": st.one_of(
            trees,
            st.fixed_dictionaries(
                {
                    "pipelines": st.dictionaries(
                        st.sampled_from(["traces", "metrics", "logs", "traces/x"]),
                        st.fixed_dictionaries(
                            {},
                            optional={
                                k: st.lists(st.sampled_from(TYPES), max_size=3)
                                for k in ("receivers", "processors", "exporters")
                            },
                        ),
                        max_size=2,
                    )
                }
            ),
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_structured_garbage_gives_config_errors_with_paths(cfg: dict) -> None:
    try:
        build_config(load_text(yaml.safe_dump(cfg)), REGISTRY)
    except ConfigError as e:
        assert e.problems
        assert all(isinstance(p, str) and ":" in p for p in e.problems)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_config_errors(text: str) -> None:
    try:
        build_config(load_text(text), REGISTRY)
    except ConfigError as e:
        assert e.problems
