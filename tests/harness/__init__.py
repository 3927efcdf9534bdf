"""Ground-truth harness: build and run the demo service and Jaeger, hit scenarios, read
spans back from Jaeger's query API. Used by tests/e2e (and later by benchmarks and the
README demo); the shell scripts in scripts/ do the work, so a person and a test start the
services the same way."""

from harness.demo import ScenarioResult, expected_span_count, hit, hit_many
from harness.jaeger import JaegerClient, Span, Trace, run_scenario
from harness.otlpfile import read_traces, spans_of
from harness.services import (
    ROOT,
    DemoBuild,
    DemoService,
    JaegerService,
    build_demo,
    build_jaeger,
    free_ports,
    listening_sockets,
)

__all__ = [
    "ROOT",
    "DemoBuild",
    "DemoService",
    "JaegerClient",
    "JaegerService",
    "ScenarioResult",
    "Span",
    "Trace",
    "build_demo",
    "build_jaeger",
    "expected_span_count",
    "free_ports",
    "hit",
    "hit_many",
    "listening_sockets",
    "read_traces",
    "run_scenario",
    "spans_of",
]
