"""A small client of Jaeger's HTTP query API (/api/services, /api/traces).

Spans come back as plain dataclasses with the OTLP notions the tests assert on (span kind,
parent span id, duration, attributes), translated once here from Jaeger's JSON model
(microsecond times, `references`, `span.kind` and status as tags)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.demo import ScenarioResult, expected_span_count, hit


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str  # "server", "client", "internal", "producer", "consumer"
    start_us: int
    duration_us: int
    service: str
    attrs: dict[str, Any] = field(hash=False)
    resource: dict[str, Any] = field(hash=False)
    # span events (Jaeger "logs"): (name, fields); the name is the "event" field
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list, hash=False)

    @property
    def duration_ms(self) -> float:
        return self.duration_us / 1000

    @property
    def is_error(self) -> bool:
        return self.attrs.get("otel.status_code") == "ERROR" or self.attrs.get("error") is True


@dataclass
class Trace:
    trace_id: str
    spans: list[Span]

    def named(self, name: str, kind: str | None = None) -> list[Span]:
        return [s for s in self.spans if s.name == name and (kind is None or s.kind == kind)]

    def one(self, name: str, kind: str | None = None) -> Span:
        """The single span with this name (and kind); fails loudly listing what is there."""
        found = self.named(name, kind)
        if len(found) != 1:
            have = sorted((s.name, s.kind) for s in self.spans)
            raise AssertionError(f"expected one span {name!r} ({kind}), found {len(found)}: {have}")
        return found[0]

    def children(self, parent: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_span_id == parent.span_id]

    @property
    def roots(self) -> list[Span]:
        ids = {s.span_id for s in self.spans}
        return [s for s in self.spans if s.parent_span_id not in ids]


def _log_event(log: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fields = {kv["key"]: kv["value"] for kv in log.get("fields", [])}
    return str(fields.pop("event", "")), fields


def _parse_trace(t: dict[str, Any]) -> Trace:
    processes = t.get("processes", {})
    spans = []
    for s in t["spans"]:
        tags = {kv["key"]: kv["value"] for kv in s.get("tags", [])}
        parent = next(
            (
                r["spanID"]
                for r in s.get("references", [])
                if r.get("refType") == "CHILD_OF" and r.get("traceID") == s["traceID"]
            ),
            None,
        )
        proc = processes.get(s.get("processID", ""), {})
        spans.append(
            Span(
                trace_id=s["traceID"],
                span_id=s["spanID"],
                parent_span_id=parent,
                name=s["operationName"],
                kind=str(tags.get("span.kind", "internal")),
                start_us=int(s["startTime"]),
                duration_us=int(s["duration"]),
                service=proc.get("serviceName", ""),
                attrs=tags,
                resource={kv["key"]: kv["value"] for kv in proc.get("tags", [])},
                events=[_log_event(log) for log in s.get("logs", [])],
            )
        )
    return Trace(trace_id=t["traceID"], spans=spans)


class JaegerClient:
    def __init__(self, base_url: str, timeout_s: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str, **params: Any) -> Any:
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base_url}{path}" + (f"?{q}" if q else "")
        with urllib.request.urlopen(url, timeout=self.timeout_s) as r:
            return json.loads(r.read())

    def services(self) -> list[str]:
        return self._get("/api/services")["data"] or []

    def traces(
        self, service: str, operation: str | None = None, limit: int = 100, lookback: str = "1h"
    ) -> list[Trace]:
        data = self._get(
            "/api/traces", service=service, operation=operation, limit=limit, lookback=lookback
        )
        return [_parse_trace(t) for t in data["data"] or []]

    def trace(self, trace_id: str) -> Trace | None:
        try:
            data = self._get(f"/api/traces/{trace_id}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        return _parse_trace(data["data"][0]) if data.get("data") else None

    def wait_trace(
        self,
        trace_id: str,
        ready: Callable[[Trace], bool] | int = 1,
        timeout_s: float = 15,
    ) -> Trace:
        """Poll until the trace exists and `ready(trace)` holds (an int means "at least that
        many spans"): spans of one trace arrive in separate batches, from separate processes
        when a pipeline is in between."""
        pred = (lambda t: len(t.spans) >= ready) if isinstance(ready, int) else ready
        deadline = time.monotonic() + timeout_s
        last: Trace | None = None
        while True:
            last = self.trace(trace_id)
            if last is not None and pred(last):
                return last
            if time.monotonic() > deadline:
                got = [] if last is None else sorted((s.name, s.kind) for s in last.spans)
                raise TimeoutError(f"trace {trace_id} not complete after {timeout_s}s: {got}")
            time.sleep(0.1)


def run_scenario(
    demo_url: str, client: JaegerClient, path: str, timeout_s: float = 30
) -> tuple[ScenarioResult, Trace]:
    """Hit one scenario and return its answer and its complete trace from Jaeger (all the
    spans the demo produces for it; episode spans a pipeline adds may arrive with them)."""
    r = hit(demo_url, path)
    if r.status != 200:
        raise AssertionError(f"{path}: HTTP {r.status}: {r.body}")
    return r, client.wait_trace(r.trace_id, expected_span_count(path), timeout_s=timeout_s)
