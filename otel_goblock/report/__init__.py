"""`otel-goblock report`: the answer the product exists for, in the terminal or as JSON.

Per span name: how slow (n, p50, p99) and where the time went (the dominant cause and the
split over the breakdown's categories). Then the slowest enriched spans as a waterfall:
their categories as bars, their diagnosis, and their episode spans on a time axis. Reads
a file the file exporter wrote, or Jaeger's query API (`--jaeger URL`).
"""

from otel_goblock.report.render import render, to_json
from otel_goblock.report.sources import FileSource, JaegerSource, SourceError, SpanRow
from otel_goblock.report.summary import CATEGORY, NameStats, Summary, summarize

__all__ = [
    "CATEGORY",
    "FileSource",
    "JaegerSource",
    "NameStats",
    "SourceError",
    "SpanRow",
    "Summary",
    "render",
    "summarize",
    "to_json",
]
