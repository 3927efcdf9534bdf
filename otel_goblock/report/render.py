"""The report in the terminal (a table and a waterfall) or as JSON for scripts."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson

from otel_goblock.report.sources import FileSource, JaegerSource, SourceError
from otel_goblock.report.summary import Slow, Summary, categories, percentile, summarize

BAR = 40  # characters of a bar that stands for the whole span
_EIGHTHS = " ▏▎▍▌▋▊▉"


def _bar(fraction: float, width: int = BAR) -> str:
    eighths = max(0, round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _slot(offset: float, length: float, width: int = BAR) -> str:
    """A span's place on its parent's time axis: `|   ████     |`."""
    start = min(width - 1, max(0, int(offset * width)))
    n = max(1, min(width - start, round(length * width)))
    return "|" + " " * start + "█" * n + " " * (width - start - n) + "|"


def _names(summary: Summary) -> list[dict[str, Any]]:
    out = []
    for (service, name), st in sorted(
        ((k, v) for k, v in summary.stats.items() if v.durations_ms),
        key=lambda kv: -max(kv[1].durations_ms),
    ):
        d = sorted(st.durations_ms)
        out.append(
            {
                "service": service,
                "name": name,
                "n": len(d),
                "p50_ms": round(percentile(d, 50), 3),
                "p99_ms": round(percentile(d, 99), 3),
                "cause": st.causes.most_common(1)[0][0] if st.causes else None,
                "causes": dict(st.causes),
                "categories_ms": {k: round(v, 3) for k, v in st.category_ms.items()},
                "slowest_diagnosis": (
                    str(st.slowest.attrs.get("goblock.diagnosis", "")) or None
                    if st.slowest is not None
                    else None
                ),
            }
        )
    return out


def _slow(s: Slow, link: str | None) -> dict[str, Any]:
    r = s.span
    return {
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "service": r.service,
        "name": r.name,
        "duration_ms": round(r.ms, 3),
        "cause": r.attrs.get("goblock.cause"),
        "diagnosis": r.attrs.get("goblock.diagnosis"),
        "categories_ms": {k: round(v, 3) for k, v in categories(r.attrs).items()},
        "link": link,
        "spans": [
            {
                "depth": depth,
                "name": c.name,
                "span_id": c.span_id,
                "offset_ms": round((c.start_ns - r.start_ns) / 1e6, 3),
                "duration_ms": round(c.ms, 3),
                "attributes": c.attrs,
            }
            for depth, c in s.descendants
        ],
    }


def to_json(summary: Summary, source: FileSource | JaegerSource) -> dict[str, Any]:
    link = source.link if isinstance(source, JaegerSource) else None
    return {
        "source": source.label,
        "spans": summary.spans,
        "malformed_lines": source.malformed,
        "names": _names(summary),
        "slowest": [_slow(s, link(s.span.trace_id) if link else None) for s in summary.slowest],
    }


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    header = f"{'service / span':<44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}  where the time went"
    print(header, file=out)
    print("-" * len(header), file=out)
    for row in rows:
        label = f"{row['service']} / {row['name']}"[:44]
        if row["cause"]:
            total = sum(row["categories_ms"].values()) or 1.0
            top = sorted(row["categories_ms"].items(), key=lambda kv: -kv[1])[:3]
            split = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in top)
            n = row["causes"][row["cause"]]
            where = f"{row['cause']} ({n}/{row['n']} spans; {split})"
        else:
            where = "not observed (no goblock attributes)"
        print(
            f"{label:<44} {row['n']:>5} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}  {where}",
            file=out,
        )
        if row["slowest_diagnosis"]:
            print(f"{'':<70}slowest: {row['slowest_diagnosis']}", file=out)


def _waterfall(i: int, s: dict[str, Any], out: TextIO) -> None:
    dur = s["duration_ms"] or 1e-9
    print(
        f"\n{i}. {s['service']} / {s['name']}  {s['duration_ms']:.1f} ms  "
        f"cause {s['cause']}  trace {s['trace_id']}",
        file=out,
    )
    if s["link"]:
        print(f"   {s['link']}", file=out)
    if s["diagnosis"]:
        print(f"   {s['diagnosis']}", file=out)
    for k, v in sorted(s["categories_ms"].items(), key=lambda kv: -kv[1]):
        if v > 0:
            print(f"   {k:<26} {v:>9.1f} ms {100 * v / dur:>4.0f}%  {_bar(v / dur)}", file=out)
    if not s["spans"]:
        return
    print(f"   {'spans (time axis: the span)':<44} {_slot(0, 1)}", file=out)
    for c in s["spans"]:
        name = ("  " * c["depth"] + c["name"])[:44]
        slot = _slot(c["offset_ms"] / dur, c["duration_ms"] / dur)
        print(
            f"   {name:<44} {slot} +{c['offset_ms']:.1f} ms, {c['duration_ms']:.1f} ms",
            file=out,
        )


def render(
    source: FileSource | JaegerSource,
    out: TextIO = sys.stdout,
    fmt: str = "text",
    top: int = 3,
) -> int:
    """Exit status: 0, or 1 when the source cannot be read (the message says why)."""
    try:
        summary = summarize(source.rows, top=top)
    except SourceError as e:
        print(str(e), file=sys.stderr if out is sys.stdout else out)
        return 1
    doc = to_json(summary, source)
    if fmt == "json":
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(f"{doc['source']}: {doc['spans']} spans", file=out)
    if doc["malformed_lines"]:
        print(f"  ({doc['malformed_lines']} malformed lines skipped)", file=out)
    if not doc["names"]:
        print("  no application spans", file=out)
        return 0
    _table(doc["names"], out)
    if doc["slowest"]:
        print(f"\nslowest enriched spans ({len(doc['slowest'])})", file=out)
        for i, s in enumerate(doc["slowest"], 1):
            _waterfall(i, s, out)
    return 0
