"""Config loading: the collector's rules, and errors that name the key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otel_goblock.component import ComponentID, default_registry
from otel_goblock.config import ByteSize, ConfigError, Duration, Endpoint, decode
from otel_goblock.config.loader import expand_env, load_file, load_text
from otel_goblock.service_config import build_config

TESTDATA = Path(__file__).parent / "testdata"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        build_config(load_text(text), default_registry())
    return e.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("200ms", 0.2), ("5s", 5.0), ("1m30s", 90.0), ("1.5h", 5400.0), ("0", 0.0), ("250us", 250e-6)],
)
def test_duration_parses_go_style(text: str, seconds: float) -> None:
    assert Duration.parse(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "5", "5 s s", "-1s", "", "s5", 5])
def test_duration_rejects_non_durations(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        Duration.parse(text)


def test_sizes_and_endpoints() -> None:
    assert ByteSize.parse("64MiB") == 64 * 1024 * 1024
    assert ByteSize.parse(10) == 10
    assert Endpoint.parse("localhost:4317").port == 4317
    assert Endpoint.parse("[::1]:4317").host == "::1"
    for bad in ("localhost", ":4317", "host:port", 4317):
        with pytest.raises(ValueError, match="host:port"):
            Endpoint.parse(bad)


def test_component_ids() -> None:
    assert ComponentID.parse("otlp_grpc/jaeger") == ComponentID("otlp_grpc", "jaeger")
    assert str(ComponentID.parse("batch")) == "batch"
    for bad in ("", "a/", "/a", "a/b/c"):
        with pytest.raises(ValueError):
            ComponentID.parse(bad)


def test_env_expansion() -> None:
    env = {"PORT": "4317", "HOST": "example"}
    assert expand_env("${env:HOST}:${env:PORT}", env) == "example:4317"
    assert expand_env("${env:PORT}", env) == 4317  # a whole reference keeps its YAML type
    assert expand_env("${env:MISSING:-fallback}", env) == "fallback"
    assert expand_env("${env:MISSING}", env) == ""
    assert expand_env("price $$5 ${HOST}", env) == "price $5 example"
    assert expand_env({"a": ["${env:HOST}"]}, env) == {"a": ["example"]}


def test_env_expansion_inside_a_config_file() -> None:
    raw = load_text(
        "processors:\n  batch:\n    timeout: ${env:T:-1s}\n    send_batch_size: ${env:N}\n",
        env={"N": "7"},
    )
    assert raw.processors["batch"] == {"timeout": "1s", "send_batch_size": 7}


@dataclass
class _Retry:
    enabled: bool = True
    max_interval: Duration = field(default_factory=lambda: Duration(30))


@dataclass
class _Exporter:
    endpoint: Endpoint = field(default_factory=lambda: Endpoint("localhost:4317"))
    retry_on_failure: _Retry = field(default_factory=_Retry)
    headers: dict[str, str] = field(default_factory=dict)


def test_error_names_the_full_key_path() -> None:
    with pytest.raises(ConfigError) as e:
        decode(
            _Exporter, {"retry_on_failure": {"max_interval": "fast"}}, "exporters.otlp_grpc/jaeger"
        )
    assert e.value.problems == [
        "exporters.otlp_grpc/jaeger.retry_on_failure.max_interval: "
        'expected a duration like "30s" or "200ms", got \'fast\''
    ]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        decode(_Exporter, {"endpoint": "nope", "retry_on_failure": {"enabled": "yes", "x": 1}})
    text = "\n".join(e.value.problems)
    assert "endpoint: expected host:port" in text
    assert "retry_on_failure.enabled: expected true or false, got 'yes'" in text
    assert "retry_on_failure.x: unknown key (known keys: enabled, max_interval)" in text


def test_unknown_key_in_a_component() -> None:
    problems = problems_of((TESTDATA / "bad_unknown_key.yaml").read_text())
    assert any(p.startswith("processors.batch.send_batch_sise: unknown key") for p in problems)


def test_bad_duration_in_a_component() -> None:
    problems = problems_of((TESTDATA / "bad_duration.yaml").read_text())
    assert any(p.startswith("processors.batch.timeout: expected a duration") for p in problems)


def test_pipeline_naming_undefined_components() -> None:
    problems = problems_of((TESTDATA / "bad_undefined_component.yaml").read_text())
    assert "service.pipelines.traces.receivers: receiver 'nope' is not configured" in "\n".join(
        problems
    )
    assert any("processor 'memory_limiter' is not configured" in p for p in problems)
    assert any("exporter 'nope2' is not configured" in p for p in problems)


def test_pipeline_without_exporter() -> None:
    problems = problems_of((TESTDATA / "bad_missing_exporter.yaml").read_text())
    assert "service.pipelines.traces.exporters: a pipeline needs at least one exporter" in problems


def test_unknown_top_level_key_and_signal() -> None:
    assert problems_of("recievers: {}\n") == [
        "recievers: unknown key (known keys: receivers, processors, exporters, extensions,"
        " connectors, service)"
    ]
    problems = problems_of("service:\n  pipelines:\n    logs: {receivers: [a], exporters: [b]}\n")
    assert any("pipelines.logs: unsupported signal 'logs'" in p for p in problems)


def test_unknown_component_type() -> None:
    problems = problems_of("processors:\n  batchy:\n")
    assert problems[0].startswith("processors.batchy: unknown processor type 'batchy' (known:")


def test_memory_limiter_rules() -> None:
    problems = problems_of(
        "processors:\n  memory_limiter:\n    limit_mib: 100\n    spike_limit_mib: 200\n"
    )
    assert any(p.startswith("processors.memory_limiter.check_interval") for p in problems)
    assert any(p.startswith("processors.memory_limiter.spike_limit_mib") for p in problems)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_file(bad)
