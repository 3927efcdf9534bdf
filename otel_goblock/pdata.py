"""The data that moves through a pipeline.

Spans and metrics stay OTLP protobuf end to end (DESIGN §3): a `Traces` holds either the
serialized request as received, the parsed request, or both, so a pass-through pipeline
(receiver → batch → exporter) never parses or rebuilds a span.  Serialized OTLP requests
concatenate into a valid request (repeated fields merge on the wire), which is what the
batch processor relies on.

goblock *events* (eBPF and Go-trace observations) ride in the traces pipeline beside the
spans, in `Traces.events`, so that every processor sees them and the goblock processor can
consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass(slots=True)
class RequestInfo:
    """Where a batch came from: lets a processor find the sending process on this host."""

    transport: str = ""  # "grpc" | "http" | "ebpf" | "gotrace" | ...
    peer: str = ""  # "ip:port" of the OTLP client, when known
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Event:
    """One observed interval or instant (DESIGN §3 "Event").

    `attrs` carries the kind-specific fields (syscall name, fd target, wait reason, 4-tuple,
    trace/span ids of a span marker, …); the common fields are attributes of their own
    because the join indexes on them.
    """

    kind: str  # "syscall" | "offcpu" | "runqueue" | "park" | "gc_stw" | "gc_assist" | "tcp"
    #           | "grpc" | "span_marker" | "lineage" | ...
    pid: int
    tid: int
    goid: int  # 0 when unknown
    start_ns: int  # wall clock (CLOCK_REALTIME), ns
    end_ns: int  # == start_ns for instants
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the receiver that saw it: "ebpf" | "gotrace"

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


class _Serialized:
    """An OTLP export request kept serialized when possible, parsed at most once."""

    __slots__ = ("_msg", "_raw")
    _message_type: type

    def __init__(self, raw: bytes | None, message: object | None) -> None:
        self._raw = raw
        self._msg = message

    def message(self) -> Any:
        """The parsed request (parsed once, on first use); to edit it use `mutable_message`."""
        if self._msg is None:
            msg = self._message_type()
            if self._raw:
                msg.ParseFromString(self._raw)
            self._msg = msg
        return self._msg

    def mutable_message(self) -> Any:
        """The parsed request, for editing: the cached serialized form is dropped."""
        msg = self.message()
        self._raw = None
        return msg

    def serialized(self) -> bytes:
        if self._raw is None:
            self._raw = self._msg.SerializeToString() if self._msg is not None else b""
        return self._raw

    def has_raw(self) -> bool:
        return self._raw is not None


class Traces(_Serialized):
    """A unit of trace data: an ExportTraceServiceRequest, plus goblock events."""

    __slots__ = ("events", "info", "span_count")
    _message_type = ExportTraceServiceRequest

    def __init__(
        self,
        *,
        raw: bytes | None = None,
        message: ExportTraceServiceRequest | None = None,
        span_count: int | None = None,
        events: list[Event] | None = None,
        info: RequestInfo | None = None,
    ) -> None:
        super().__init__(raw, message)
        if span_count is None:
            span_count = count_spans(self.message()) if (raw or message) else 0
        self.span_count = span_count
        self.events = events or []
        self.info = info or RequestInfo()

    def message(self) -> ExportTraceServiceRequest:
        return super().message()

    def mutable_message(self) -> ExportTraceServiceRequest:
        return super().mutable_message()

    def with_events_only(self) -> Traces:
        return Traces(raw=b"", span_count=0, events=self.events, info=self.info)


class Metrics(_Serialized):
    """A unit of metric data: an ExportMetricsServiceRequest."""

    __slots__ = ("data_point_count", "info")
    _message_type = ExportMetricsServiceRequest

    def __init__(
        self,
        *,
        raw: bytes | None = None,
        message: ExportMetricsServiceRequest | None = None,
        data_point_count: int | None = None,
        info: RequestInfo | None = None,
    ) -> None:
        super().__init__(raw, message)
        if data_point_count is None:
            data_point_count = count_data_points(self.message()) if (raw or message) else 0
        self.data_point_count = data_point_count
        self.info = info or RequestInfo()

    def message(self) -> ExportMetricsServiceRequest:
        return super().message()

    def mutable_message(self) -> ExportMetricsServiceRequest:
        return super().mutable_message()


def count_spans(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def count_data_points(req: ExportMetricsServiceRequest) -> int:
    """Data points, counted as the collector counts them (one per point, per metric type)."""
    n = 0
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                which = m.WhichOneof("data")
                if which is not None:
                    n += len(getattr(m, which).data_points)
    return n
