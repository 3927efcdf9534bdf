"""The example configs in processors/goblock/testdata decode (or fail) as named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from otel_goblock.processors.goblock.config import Config

from otel_goblock.config import decode
from otel_goblock.config.decode import ConfigError

TESTDATA = Path(__file__).resolve().parents[2] / "processors" / "goblock" / "testdata"


def load(name: str) -> object:
    return yaml.safe_load((TESTDATA / name).read_text())


def test_default_yaml_equals_the_defaults() -> None:
    assert decode(Config, load("default.yaml")) == Config()


def test_emit_unjoined_yaml() -> None:
    cfg = decode(Config, load("emit_unjoined.yaml"))
    assert (cfg.unjoined, cfg.unjoined_after, cfg.prefer_source) == ("emit", 5.0, "gotrace")
    assert cfg.service_names == {"demo": "demo-service"}


def test_bad_files_fail_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match="join_delay: must be below retention"):
        decode(Config, load("bad_join_delay_beyond_retention.yaml"))
