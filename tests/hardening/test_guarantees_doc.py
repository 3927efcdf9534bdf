"""The Guarantees docs name counters a user will look for on /metrics: every
`otelcol_*` / `goblock_*` name in README's "Guarantees" section and in docs/guarantees.md
must be an instrument some component actually creates (with the Prometheus `_total` suffix
for counters). The names are collected from a service built with every component type
(built, not started: every instrument is created in the constructors)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from otel_goblock.component import default_registry
from otel_goblock.config.loader import load_text
from otel_goblock.service import Service
from otel_goblock.service_config import build_config
from otel_goblock.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
receivers:
  otlp: {{}}
  ebpf: {{targets: [{{pid: 1}}]}}
  gotrace: {{directory: {dir}}}
processors: {{memory_limiter: {{check_interval: 1s, limit_mib: 512}}, goblock: {{}}, batch: {{}}}}
exporters:
  otlp_grpc: {{endpoint: "localhost:1"}}
  otlp_http: {{endpoint: "http://localhost:1"}}
  file: {{path: {dir}/x.jsonl}}
  debug: {{}}
service:
  pipelines:
    traces:
      receivers: [otlp, ebpf, gotrace]
      processors: [memory_limiter, goblock, batch]
      exporters: [otlp_grpc, otlp_http, file, debug]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp_grpc, otlp_http, file, debug]
"""


class _RecordingMeter:
    def __init__(self, meter: Any, names: dict[str, str]) -> None:
        self._meter, self._names = meter, names

    def __getattr__(self, attr: str) -> Any:
        fn = getattr(self._meter, attr)
        if not attr.startswith("create_"):
            return fn

        def create(name: str, *a: Any, **kw: Any) -> Any:
            self._names[name] = attr
            return fn(name, *a, **kw)

        return create


class _RecordingTelemetry(Telemetry):
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # instrument name → create_* kind
        super().__init__()

    def meter(self, name: str) -> Any:
        return _RecordingMeter(super().meter(name), self.names)


def exposed_names(tmp_path: Path) -> set[str]:
    tel = _RecordingTelemetry()
    cfg = build_config(load_text(CONFIG.format(dir=tmp_path)), default_registry())
    Service(cfg, tel).build()
    out = set()
    for name, kind in tel.names.items():
        counter = kind in ("create_counter", "create_observable_counter")
        out.add(name + "_total" if counter and not name.endswith("_total") else name)
    return out


def documented_names() -> dict[str, set[str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    pattern = re.compile(r"\b((?:otelcol|goblock)_[a-z0-9_]+)\b")
    return {
        "README.md#guarantees": set(pattern.findall(section)),
        "docs/guarantees.md": set(pattern.findall((ROOT / "docs/guarantees.md").read_text())),
    }


def test_every_counter_the_guarantees_name_exists(tmp_path: Path) -> None:
    exposed = exposed_names(tmp_path)
    # sanity: the collection works (these exist for sure)
    assert "otelcol_exporter_enqueue_failed_spans_total" in exposed
    assert "goblock_events_lost_total" in exposed
    for doc, names in documented_names().items():
        assert len(names) >= 10, doc  # the section is really there
        missing = sorted(n for n in names if n not in exposed)
        assert not missing, f"{doc} names counters no component creates: {missing}"
