"""Config of the otlp receiver: testdata/*.yaml, good and bad, each bad one with the exact
key path and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from otel_goblock.receivers.otlp.config import Config, GRPCConfig, HTTPConfig, Protocols
from otel_goblock.receivers.otlp.factory import FACTORY
from otel_goblock.receivers.otlp.grpc import server_options

from otel_goblock import component
from otel_goblock.component import Registry
from otel_goblock.config import ConfigError, decode
from otel_goblock.config.loader import expand_env, load_text
from otel_goblock.service_config import build_config

from .test_tls import PKI

TESTDATA = Path(__file__).resolve().parents[2] / "receivers" / "otlp" / "testdata"
PATH = "receivers.otlp"


def load(name: str, env: dict[str, str] | None = None) -> Config:
    data = expand_env(yaml.safe_load((TESTDATA / name).read_text()), env or {})
    return decode(Config, data, PATH)


def test_factory() -> None:
    assert FACTORY.type == "otlp" and FACTORY.kind == "receiver"
    assert FACTORY.signals == frozenset({"traces", "metrics"})
    cfg = FACTORY.create_default_config()
    assert cfg.protocols.grpc.endpoint == "localhost:4317"
    assert cfg.protocols.http.endpoint == "localhost:4318"
    # registered (checked without importing every other component, some of which may be
    # mid-change in a shared tree)
    assert "otel_goblock.receivers.otlp.factory" in component._FACTORY_MODULES


def test_defaults_match_the_collector() -> None:
    cfg = load("default.yaml")
    assert cfg == FACTORY.create_default_config() == load("no_protocols.yaml")
    g, h = cfg.protocols.grpc, cfg.protocols.http
    assert (g.endpoint, g.max_recv_msg_size_mib, g.tls) == ("localhost:4317", 4, None)
    assert (h.endpoint, h.max_request_body_size) == ("localhost:4318", 20 * 1024 * 1024)
    assert (h.traces_url_path, h.metrics_url_path) == ("/v1/traces", "/v1/metrics")


def test_naming_one_protocol_turns_the_other_off() -> None:
    assert load("only_grpc.yaml").protocols == Protocols(grpc=GRPCConfig(), http=None)
    only_http = load("only_http.yaml").protocols
    assert only_http.grpc is None
    assert only_http.http == HTTPConfig(endpoint="0.0.0.0:4318")


def test_full_config(tmp_path: Path) -> None:
    PKI(tmp_path)
    cfg = load("full.yaml", {"TLS_DIR": str(tmp_path)})
    g, h = cfg.protocols.grpc, cfg.protocols.http
    assert (g.endpoint, g.max_recv_msg_size_mib, g.max_concurrent_streams) == (
        "127.0.0.1:14317",
        32,
        100,
    )
    assert g.include_metadata and h.include_metadata
    assert g.tls.client_ca_file == f"{tmp_path}/ca.pem"
    assert h.tls.cert_file == f"{tmp_path}/server.pem" and h.tls.client_ca_file == ""
    assert (h.endpoint, h.max_request_body_size) == ("[::1]:14318", 64 * 1024 * 1024)
    assert (h.traces_url_path, h.metrics_url_path) == ("/otlp/v1/traces", "/otlp/v1/metrics")
    opts = dict(server_options(g))
    assert opts["grpc.max_receive_message_length"] == 32 * 1024 * 1024
    assert opts["grpc.max_concurrent_streams"] == 100
    assert opts["grpc.max_connection_idle_ms"] == 11_000
    assert opts["grpc.max_connection_age_ms"] == 12_000
    assert opts["grpc.max_connection_age_grace_ms"] == 13_000
    assert opts["grpc.keepalive_time_ms"] == 30_000
    assert opts["grpc.keepalive_timeout_ms"] == 5_000
    assert opts["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert opts["grpc.keepalive_permit_without_calls"] == 1
    assert opts["grpc.so_reuseport"] == 0


P = "receivers.otlp.protocols"
BAD = {
    "bad_empty_protocols.yaml": f"{P}: must specify at least one protocol",
    "bad_unknown_key.yaml": f"{P}.grpc.endpiont: unknown key",
    "bad_unknown_protocol.yaml": f"{P}.thrift: unknown key",
    "bad_endpoint.yaml": f'{P}.grpc.endpoint: expected host:port like "localhost:4317", got 4317',
    "bad_body_size.yaml": f"{P}.http.max_request_body_size: expected a size in bytes",
    "bad_recv_size.yaml": f"{P}.grpc.max_recv_msg_size_mib: expected > 0, got 0",
    "bad_url_path.yaml": f'{P}.http.traces_url_path: expected a path starting with "/"',
    "bad_same_url_paths.yaml": f"{P}.http.metrics_url_path: expected a path different",
    "bad_tls_cert_without_key.yaml": f"{P}.grpc.tls.cert_file, key_file: expected both or neither",
    "bad_tls_missing_file.yaml": (
        f"{P}.http.tls.cert_file: expected a readable file, got '/nonexistent/server.pem'"
    ),
    "bad_same_endpoint.yaml": f"{P}.http.endpoint: expected an endpoint different from grpc",
    "bad_keepalive_duration.yaml": (
        f'{P}.grpc.keepalive.enforcement_policy.min_time: expected a duration like "30s"'
    ),
    "bad_client_ca_without_cert.yaml": (
        f"{P}.grpc.tls.client_ca_file: expected cert_file and key_file too"
    ),
}


def test_every_bad_testdata_file_is_covered() -> None:
    assert {p.name for p in TESTDATA.glob("bad_*.yaml")} == set(BAD)


@pytest.mark.parametrize(("name", "message"), sorted(BAD.items()))
def test_bad_config_names_the_key_and_the_problem(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(name)
    assert any(p.startswith(message) for p in e.value.problems), e.value.problems


def test_in_a_full_service_config() -> None:
    text = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: localhost:${env:GRPC_PORT:-24317}
  otlp/2:
    protocols:
      http:
        max_request_body_size: 1MiB
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/2]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      exporters: [debug]
"""
    from otel_goblock.exporters.debug.factory import FACTORY as DEBUG

    registry = Registry([FACTORY, DEBUG])
    cfg: Any = build_config(load_text(text, env={"GRPC_PORT": "5555"}), registry)
    first = cfg.receivers["otlp"].config.protocols
    assert first.grpc.endpoint == "localhost:5555" and first.http is None
    second = cfg.receivers["otlp/2"].config.protocols
    assert second.grpc is None and second.http.max_request_body_size == 1024 * 1024
