"""Where `otel-goblock report` reads spans from: a file the file exporter wrote, or
Jaeger's query API. Both become the same small rows, so the summary and the waterfall do
not care which one it was.

This is a reporting tool, not the forward path: a Python object per span is fine here,
but only the `goblock.*` attributes are kept, so a large file costs time, not memory.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_goblock.receivers.otlp.otlpjson import OTLPJSONError, decode_traces

_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_CLIENT


@dataclass(slots=True)
class SpanRow:
    trace_id: str  # hex
    span_id: str
    parent_id: str  # "" for a root
    service: str
    name: str
    client: bool  # a gRPC method names both its client and its server span
    start_ns: int
    end_ns: int
    attrs: dict[str, Any] = field(default_factory=dict)  # goblock.* only

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def episode(self) -> bool:
        return self.name.startswith("goblock: ")


class SourceError(Exception):
    """The source cannot be read at all; the message names it and the fix."""


@dataclass
class FileSource:
    """One OTLP/JSON request per line. Malformed lines are counted and skipped."""

    path: Path
    malformed: int = 0

    @property
    def label(self) -> str:
        return str(self.path)

    def rows(self) -> Iterator[SpanRow]:
        if not self.path.exists():
            raise SourceError(
                f"{self.path}: no such file (run the pipeline with a file exporter first)"
            )
        self.malformed = 0
        with self.path.open() as f:
            for line in f:
                if '"resourceSpans"' not in line:
                    continue
                try:
                    req = decode_traces(line)
                except OTLPJSONError:
                    self.malformed += 1
                    continue
                for rs in req.resource_spans:
                    service = next(
                        (
                            a.value.string_value
                            for a in rs.resource.attributes
                            if a.key == "service.name"
                        ),
                        "?",
                    )
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            yield SpanRow(
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_id=s.parent_span_id.hex(),
                                service=service,
                                name=s.name,
                                client=s.kind == _CLIENT,
                                start_ns=s.start_time_unix_nano,
                                end_ns=s.end_time_unix_nano,
                                attrs={
                                    a.key: _value(a.value)
                                    for a in s.attributes
                                    if a.key.startswith("goblock.")
                                },
                            )


def _value(v: Any) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which else None


@dataclass
class JaegerSource:
    """Jaeger's HTTP query API (`/api/services`, `/api/traces`): the last `limit` traces
    per service within `lookback`. The traces are held in memory (bounded by `limit`)."""

    url: str
    services: list[str] = field(default_factory=list)  # empty: every service but Jaeger's own
    limit: int = 200
    lookback: str = "1h"
    timeout_s: float = 10.0
    malformed: int = 0
    _rows: list[SpanRow] | None = None

    @property
    def label(self) -> str:
        return self.url

    def link(self, trace_id: str) -> str:
        return f"{self.url.rstrip('/')}/trace/{trace_id}"

    def _get(self, path: str, **params: Any) -> Any:
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url.rstrip('/')}{path}" + (f"?{q}" if q else "")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise SourceError(
                f"{url}: cannot read Jaeger's query API ({e}); is Jaeger running there? "
                "(scripts/services.sh start jaeger; pass the query port, default 16686)"
            ) from e

    def rows(self) -> Iterator[SpanRow]:
        if self._rows is None:
            services = self.services or [
                s for s in self._get("/api/services").get("data") or [] if s != "jaeger"
            ]
            rows: list[SpanRow] = []
            seen: set[str] = set()
            for service in services:
                data = self._get(
                    "/api/traces", service=service, limit=self.limit, lookback=self.lookback
                )
                for t in data.get("data") or []:
                    if t.get("traceID") in seen:  # a trace that crosses two services
                        continue
                    seen.add(t.get("traceID"))
                    rows.extend(_jaeger_trace(t))
            self._rows = rows
        yield from self._rows


def _jaeger_trace(t: dict[str, Any]) -> Iterator[SpanRow]:
    processes = t.get("processes", {})
    for s in t.get("spans", []):
        tags = {kv["key"]: kv.get("value") for kv in s.get("tags", [])}
        parent = next(
            (
                r["spanID"]
                for r in s.get("references", [])
                if r.get("refType") == "CHILD_OF" and r.get("traceID") == s["traceID"]
            ),
            "",
        )
        start_ns = int(s["startTime"]) * 1000
        yield SpanRow(
            trace_id=s["traceID"],
            span_id=s["spanID"],
            parent_id=parent,
            service=processes.get(s.get("processID", ""), {}).get("serviceName", "?"),
            name=s["operationName"],
            client=tags.get("span.kind") == "client",
            start_ns=start_ns,
            end_ns=start_ns + int(s["duration"]) * 1000,
            attrs={k: v for k, v in tags.items() if k.startswith("goblock.")},
        )
