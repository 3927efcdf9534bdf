"""What the report says: per span name, how slow and where the time went; and the
slowest enriched spans with their episode spans, for the waterfall.

One pass over the rows builds the per-name aggregates and keeps the `top` slowest
enriched spans in a heap; a second pass (a file is read again) gathers only the spans of
those traces. Memory: the aggregates, not the file.
"""

from __future__ import annotations

import heapq
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from otel_goblock.report.sources import SpanRow

# the breakdown's categories (docs/attributes.md); other `.ms` attributes such as
# `goblock.grpc.flow_control.wait.ms` measure something else and do not add up with them
CATEGORY = re.compile(
    r"^goblock\.(on_cpu|runqueue|syscall|gc\.stw|gc\.assist|unattributed"
    r"|park\.[a-z0-9_]+|grpc\.flow_control)\.ms$"
)


def categories(attrs: dict[str, Any]) -> dict[str, float]:
    """{category: ms} of one span's breakdown."""
    return {
        k[len("goblock.") : -3]: float(v)
        for k, v in attrs.items()
        if CATEGORY.match(k) and isinstance(v, int | float)
    }


@dataclass
class NameStats:
    durations_ms: list[float] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    category_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    slowest: SpanRow | None = None  # the slowest enriched span of this name
    episodes: int = 0


@dataclass
class Slow:
    """One of the slowest enriched spans, with the spans of its trace under it."""

    span: SpanRow
    descendants: list[tuple[int, SpanRow]] = field(default_factory=list)  # (depth, span)


@dataclass
class Summary:
    stats: dict[tuple[str, str], NameStats]
    spans: int
    slowest: list[Slow]


def row_name(r: SpanRow) -> str:
    return r.name + " (client)" if r.client else r.name


def summarize(rows: Callable[[], Iterable[SpanRow]], top: int = 3) -> Summary:
    """`rows` is called once per pass (twice when `top` > 0). The waterfall shows the `top`
    slowest enriched spans, one per span name: the slowest of each of the slowest names, so
    one slow endpoint does not fill the view."""
    stats: dict[tuple[str, str], NameStats] = defaultdict(NameStats)
    spans = 0
    for r in rows():
        spans += 1
        if r.episode:
            stats[(r.service, r.name)].episodes += 1
            continue
        st = stats[(r.service, row_name(r))]
        ms = r.ms
        st.durations_ms.append(ms)
        cause = r.attrs.get("goblock.cause")
        if not cause:
            continue
        st.causes[str(cause)] += 1
        if st.slowest is None or ms >= st.slowest.ms:
            st.slowest = r
        for k, v in categories(r.attrs).items():
            st.category_ms[k] += v
    rows_by_ms = [st.slowest for st in stats.values() if st.slowest is not None]
    slow = [Slow(r) for r in heapq.nlargest(top, rows_by_ms, key=lambda r: r.ms)]
    if slow:
        _gather(rows, slow)
    return Summary(stats=stats, spans=spans, slowest=slow)


def _gather(rows: Callable[[], Iterable[SpanRow]], slow: list[Slow]) -> None:
    traces = {s.span.trace_id for s in slow}
    by_trace: dict[str, list[SpanRow]] = defaultdict(list)
    for r in rows():
        if r.trace_id in traces:
            by_trace[r.trace_id].append(r)
    for s in slow:
        children: dict[str, list[SpanRow]] = defaultdict(list)
        for r in by_trace[s.span.trace_id]:
            children[r.parent_id].append(r)

        def walk(parent: str, depth: int, s: Slow = s, children=children) -> None:
            for c in sorted(children.get(parent, []), key=lambda c: c.start_ns):
                s.descendants.append((depth, c))
                walk(c.span_id, depth + 1)

        walk(s.span.span_id, 1)


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
