"""Hitting the demo service's scenarios. Each answer is the scenario's JSON report,
including the trace id of the request's server span, which is how a test finds the trace
in Jaeger (no searching by time windows)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScenarioResult:
    path: str
    status: int
    body: dict[str, Any]

    @property
    def trace_id(self) -> str:
        return str(self.body["trace_id"])


def hit(base_url: str, path: str, timeout_s: float = 60) -> ScenarioResult:
    """GET one scenario (e.g. "/sleep?ms=50"); HTTP errors are returned, not raised, since
    a 500 carries the scenario's report of what went wrong."""
    url = base_url.rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return ScenarioResult(path, r.status, json.loads(r.read()))
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": raw.decode(errors="replace")}
        return ScenarioResult(path, e.code, body)


def hit_many(base_url: str, paths: list[str], parallel: int = 16) -> list[ScenarioResult]:
    """Hit scenarios concurrently (results in the order of `paths`): the scenarios mostly
    wait, so running them side by side keeps the suite fast."""
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(paths)))) as pool:
        return list(pool.map(lambda p: hit(base_url, p), paths))


# Spans each scenario's trace holds when the demo exports straight to a backend: the
# server span, plus an HTTP or gRPC client span and the callee's server span.
EXPECTED_SPANS = {
    "/downstream": 3,
    "/grpc/unary": 3,
    "/grpc/flow": 3,
    "/grpc/keepalive": 3,
}


def expected_span_count(path: str) -> int:
    """How many spans the trace of `path` has before otel-goblock adds episode spans."""
    return EXPECTED_SPANS.get(path.split("?", 1)[0], 1)
