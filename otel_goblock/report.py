"""`otel-goblock report`: the terminal view of an enriched-traces file.

Reads what the file exporter wrote (one OTLP/JSON request per line) and answers the
question the product exists for, per span name: how slow, and where the time went.
Streams the file line by line: a large file costs time, not memory beyond one line and
the per-name aggregates.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from otel_goblock.receivers.otlp.otlpjson import OTLPJSONError, decode_traces

# the breakdown's categories (docs/attributes.md); other `.ms` attributes such as
# `goblock.grpc.flow_control.wait.ms` measure something else and do not add up with them
CATEGORY = re.compile(
    r"^goblock\.(on_cpu|runqueue|syscall|gc\.stw|gc\.assist|unattributed"
    r"|park\.[a-z0-9_]+|grpc\.flow_control)\.ms$"
)
_SPAN_KIND_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@dataclass
class NameStats:
    durations_ms: list[float] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    category_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    slowest: tuple[float, str] = (0.0, "")  # (ms, diagnosis of the slowest enriched span)
    episodes: int = 0


def _value(v: object) -> object:
    which = v.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(v, which) if which else None


def summarize(path: Path) -> tuple[dict[tuple[str, str], NameStats], int, int]:
    """{(service, span name): stats}, spans read, malformed lines skipped."""
    stats: dict[tuple[str, str], NameStats] = defaultdict(NameStats)
    spans = bad = 0
    with path.open() as f:
        for line in f:
            if '"resourceSpans"' not in line:
                continue
            try:
                req = decode_traces(line)
            except OTLPJSONError:
                bad += 1
                continue
            for rs in req.resource_spans:
                service = next(
                    (
                        str(_value(a.value))
                        for a in rs.resource.attributes
                        if a.key == "service.name"
                    ),
                    "?",
                )
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        spans += 1
                        if s.name.startswith("goblock: "):
                            stats[(service, s.name)].episodes += 1
                            continue
                        # a gRPC method names both its client and its server span
                        name = s.name + " (client)" if s.kind == _SPAN_KIND_CLIENT else s.name
                        st = stats[(service, name)]
                        ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
                        st.durations_ms.append(ms)
                        attrs = {
                            a.key: _value(a.value)
                            for a in s.attributes
                            if a.key.startswith("goblock.")
                        }
                        cause = attrs.get("goblock.cause")
                        if cause:
                            st.causes[str(cause)] += 1
                            if ms >= st.slowest[0]:
                                st.slowest = (ms, str(attrs.get("goblock.diagnosis", "")))
                        for k, v in attrs.items():
                            if CATEGORY.match(k) and isinstance(v, int | float):
                                st.category_ms[k[len("goblock.") : -3]] += float(v)
    return stats, spans, bad


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def render(path: Path, out: TextIO = sys.stdout) -> int:
    if not path.exists():
        print(f"{path}: no such file (run the pipeline with a file exporter first)", file=out)
        return 1
    stats, spans, bad = summarize(path)
    print(f"{path}: {spans} spans", file=out)
    if bad:
        print(f"  ({bad} malformed lines skipped)", file=out)
    rows = sorted(
        ((k, v) for k, v in stats.items() if v.durations_ms),
        key=lambda kv: -max(kv[1].durations_ms),
    )
    if not rows:
        print("  no application spans", file=out)
        return 0
    header = f"{'service / span':<44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}  where the time went"
    print(header, file=out)
    print("-" * len(header), file=out)
    for (service, name), st in rows:
        d = sorted(st.durations_ms)
        label = f"{service} / {name}"[:44]
        if st.causes:
            cause, n = st.causes.most_common(1)[0]
            total = sum(st.category_ms.values()) or 1.0
            top = sorted(st.category_ms.items(), key=lambda kv: -kv[1])[:3]
            split = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)
            where = f"{cause} ({n}/{len(d)} spans; {split})"
        else:
            where = "not observed (no goblock attributes)"
        print(f"{label:<44} {len(d):>5} {_pct(d, 50):>8.1f} {_pct(d, 99):>8.1f}  {where}", file=out)
        if st.slowest[1]:
            print(f"{'':<44} {'':>5} {'':>8} {'':>8}  slowest: {st.slowest[1]}", file=out)
    return 0
