"""Every testdata config of the exporters: good ones decode, bad ones name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from otel_goblock.exporters.debug.config import Config as DebugConfig
from otel_goblock.exporters.file.config import Config as FileConfig
from otel_goblock.exporters.otlp.config import Config as GrpcConfig
from otel_goblock.exporters.otlp.config import HTTPConfig
from otel_goblock.exporters.otlp.factory import FACTORY, FACTORY_HTTP

from otel_goblock.config import ConfigError, decode

ROOT = Path(__file__).resolve().parents[2] / "exporters"

CASES = {
    "otlp/testdata/grpc_full.yaml": (GrpcConfig, None),
    "otlp/testdata/grpc_insecure.yaml": (GrpcConfig, None),
    "otlp/testdata/http_full.yaml": (HTTPConfig, None),
    "otlp/testdata/bad_grpc_no_endpoint.yaml": (GrpcConfig, "e.endpoint: expected host:port"),
    "otlp/testdata/bad_grpc_compression.yaml": (GrpcConfig, "e.compression: expected one of"),
    "otlp/testdata/bad_retry_max_interval.yaml": (
        GrpcConfig,
        "e.retry_on_failure.max_interval: expected >= initial_interval (10s), got 1s",
    ),
    "otlp/testdata/bad_http_endpoint.yaml": (HTTPConfig, "e.endpoint: expected a URL"),
    "file/testdata/full.yaml": (FileConfig, None),
    "file/testdata/bad_format.yaml": (FileConfig, "e.format: expected one of 'json', 'proto'"),
    "file/testdata/bad_no_path.yaml": (FileConfig, "e.path: expected a file path"),
    "debug/testdata/detailed.yaml": (DebugConfig, None),
    "debug/testdata/bad_verbosity.yaml": (DebugConfig, "e.verbosity: expected one of"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_testdata(name: str) -> None:
    cls, error = CASES[name]
    data = yaml.safe_load((ROOT / name).read_text())
    if error is None:
        decode(cls, data, "e")
    else:
        with pytest.raises(ConfigError) as e:
            decode(cls, data, "e")
        assert error in str(e.value)


def test_every_testdata_file_is_covered() -> None:
    files = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/testdata/*.yaml")}
    assert files == set(CASES)


def test_factory_names() -> None:
    assert (FACTORY.type, FACTORY.aliases, FACTORY.kind) == ("otlp_grpc", ("otlp",), "exporter")
    assert (FACTORY_HTTP.type, FACTORY_HTTP.aliases) == ("otlp_http", ("otlphttp",))


def test_http_url_composition() -> None:
    cfg = decode(HTTPConfig, {"endpoint": "https://h:4318/otlp"})
    assert cfg.signal_url("traces") == "https://h:4318/otlp/v1/traces"
    cfg = decode(HTTPConfig, {"endpoint": "https://h:4318/otlp/"})
    assert cfg.signal_url("metrics") == "https://h:4318/otlp/v1/metrics"
    cfg = decode(HTTPConfig, {"traces_endpoint": "http://t:1/x"})
    assert cfg.signal_url("traces") == "http://t:1/x" and cfg.signal_url("metrics") == ""


def test_storage_must_be_a_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match=r"e\.sending_queue\.storage: expected a directory"):
        decode(GrpcConfig, {"endpoint": "a:1", "sending_queue": {"storage": str(f)}}, "e")
    decode(GrpcConfig, {"endpoint": "a:1", "sending_queue": {"storage": str(tmp_path / "new")}})
