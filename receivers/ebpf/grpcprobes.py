"""grpc-go transport uprobes: where to attach them in one binary, and turning their
records into Events and OTLP metrics (DESIGN §6; the BPF side is bpf/grpc.bpf.c).

Same pattern as goruntime.py: a `GrpcProbePlan` per binary (function entries and RET
addresses, struct offsets from DWARF), `GrpcProbes` attaching it per pid, and
`grpc_events` decoding ring-buffer records into `Event(kind="grpc")`.

The functions probed and why these (grpc-go 1.60-1.85):
- `(*http2Client|http2Server).write` (≤1.68 `.Write`), entry and RETs, keyed by goid:
  a long write is a send stalled on the per-stream write quota / flow-control window
  (`(*writeQuota).get` is inlined: no symbol of its own). It runs on the application's
  goroutine, the one that owns the RPC's span.
- `handleWindowUpdate`, `handlePing`, `(*http2Client).handleGoAway`: frames as the
  transport's reader sees them (connection identity = the transport pointer in AX).
- `(*loopyWriter).pingHandler`, `outgoingGoAwayHandler`: frames written by loopy.
- `(*http2Client|http2Server).Close(err)`: the close reason (keepalive timeouts).
"""

from __future__ import annotations

import ctypes as ct
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from otel_goblock.receivers.ebpf.uprobes import BinaryUprobes

from otel_goblock.golang.binary import GoBinary, open_go_binary
from otel_goblock.golang.disasm import stack_check_branch
from otel_goblock.golang.elfimage import GoBinaryError
from otel_goblock.pdata import Event

log = logging.getLogger("otel_goblock.receiver.ebpf.grpc")

GRPC_MODULE = "google.golang.org/grpc"
T = "google.golang.org/grpc/internal/transport."
H2 = "golang.org/x/net/http2."

# kinds and flags mirrored from bpf/grpc.bpf.c (tests check them against the source)
GRPC_WRITE_WAIT, GRPC_WINDOW_UPDATE, GRPC_PING, GRPC_GOAWAY, GRPC_CLOSE = 1, 2, 3, 4, 5
F_ACK, F_SENT, F_SERVER, F_HEADS_UP, F_DECODED = 0x01, 0x02, 0x04, 0x08, 0x10
O_GOAWAY, O_FRAMES, O_STREAM_ID, O_AT_STACK_CHECK = 0x01, 0x02, 0x04, 0x08
HIT_NAMES = (
    "write",
    "write_ret",
    "window_update",
    "ping_received",
    "ping_sent",
    "goaway_received",
    "goaway_sent",
    "close",
)

# RFC 9113 §7
HTTP2_CODES = {
    0: "NO_ERROR",
    1: "PROTOCOL_ERROR",
    2: "INTERNAL_ERROR",
    3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT",
    5: "STREAM_CLOSED",
    6: "FRAME_SIZE_ERROR",
    7: "REFUSED_STREAM",
    8: "CANCEL",
    9: "COMPRESSION_ERROR",
    10: "CONNECT_ERROR",
    11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY",
    13: "HTTP_1_1_REQUIRED",
}

# ping payloads grpc-go uses for its own purposes (transport/bdp_estimator.go,
# http2_server.go goAwayPing); keepalive pings carry zeros
_PING_PURPOSE = {
    bytes([2, 4, 16, 16, 9, 14, 7, 7]): "bdp",
    bytes([1, 6, 1, 8, 0, 3, 3, 9]): "goaway_drain",
    bytes(8): "keepalive",
}

# Close errors that mean a keepalive failure (client: http2_client.go keepalive();
# server: http2_server.go keepalive())
_KEEPALIVE_CLOSE = re.compile(r"keepalive ping (failed to receive ACK|not acked)", re.I)

# family → [(function names, newest first: the first that exists is used; BPF program;
#            "entry" | "ret" | "wake")]
FAMILIES: dict[str, list[tuple[tuple[str, ...], str, str]]] = {
    # "wake": the quota-wait wakeup point inside write (see quota_wake_points), else RETs
    "flow_control": [
        ((T + "(*http2Client).write", T + "(*http2Client).Write"), "grpc_client_write", "entry"),
        ((T + "(*http2Client).write", T + "(*http2Client).Write"), "grpc_write_wake", "wake"),
        ((T + "(*http2Server).write", T + "(*http2Server).Write"), "grpc_server_write", "entry"),
        ((T + "(*http2Server).write", T + "(*http2Server).Write"), "grpc_write_wake", "wake"),
    ],
    "window_updates": [
        ((T + "(*http2Client).handleWindowUpdate",), "grpc_client_window_update", "entry"),
        ((T + "(*http2Server).handleWindowUpdate",), "grpc_server_window_update", "entry"),
    ],
    "pings": [
        ((T + "(*http2Client).handlePing",), "grpc_client_ping", "entry"),
        ((T + "(*http2Server).handlePing",), "grpc_server_ping", "entry"),
        ((T + "(*loopyWriter).pingHandler",), "grpc_ping_sent", "entry"),
    ],
    "goaway": [
        ((T + "(*http2Client).handleGoAway",), "grpc_goaway_recv", "entry"),
        ((T + "(*http2Server).outgoingGoAwayHandler",), "grpc_server_goaway_sent", "entry"),
        ((T + "(*http2Client).outgoingGoAwayHandler",), "grpc_client_goaway_sent", "entry"),
    ],
    "close": [
        ((T + "(*http2Client).Close",), "grpc_client_close", "entry"),
        ((T + "(*http2Server).Close",), "grpc_server_close", "entry"),
    ],
}
ALL_FAMILIES = frozenset(FAMILIES)

# x/net/http2 frame layouts have not changed since the frames were added (2014-2015);
# used when the binary has no DWARF. transport.ping likewise ({ack bool; data [8]byte}).
_FRAME_FALLBACK = {
    "fh_flags": 2,
    "fh_stream_id": 8,
    "wu_increment": 12,
    "ping_data": 12,
    "p_ack": 0,
    "p_data": 1,
}

_PLANS: dict[int, tuple[GoBinary, GrpcProbePlan]] = {}


class GrpcEvent(ct.Structure):
    """struct grpc_event of bpf/grpc.bpf.c (tests check the layout against the C struct)."""

    _fields_ = [
        ("start_ns", ct.c_uint64),
        ("end_ns", ct.c_uint64),
        ("goid", ct.c_uint64),
        ("conn", ct.c_uint64),
        ("pid", ct.c_uint32),
        ("tid", ct.c_uint32),
        ("stream_id", ct.c_uint32),
        ("value", ct.c_uint32),
        ("kind", ct.c_uint8),
        ("flags", ct.c_uint8),
        ("debug_len", ct.c_uint8),
        ("_pad", ct.c_uint8 * 5),
        ("data", ct.c_uint8 * 8),
        ("debug", ct.c_char * 64),
    ]


def decode_record(data: Any) -> GrpcEvent:
    """A copy of one ring-buffer record (BCC hands a pointer valid only in the callback)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return GrpcEvent.from_buffer_copy(data)
    return GrpcEvent.from_buffer_copy(ct.string_at(data, ct.sizeof(GrpcEvent)))


@dataclass
class GrpcProbePlan:
    path: str
    grpc_version: str
    offsets: dict[str, int]  # grpc_offsets fields (bpf/grpc.bpf.c) except threshold_ns
    functions: dict[str, str] = field(default_factory=dict)  # program → function used
    points: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)  # family →
    degraded: list[str] = field(default_factory=list)  # what is lost, said once in the log

    def probe_points(self, families: Iterable[str]) -> list[tuple[str, str, int]]:
        """(function, BPF program, vaddr) for every probe of the enabled families."""
        return [p for fam in families for p in self.points.get(fam, [])]


def quota_wake_points(binary: GoBinary, func: str) -> list[int]:
    """vaddrs of the `jcc` after each `call runtime.selectgo` in write (amd64), [] if none.

    `(*writeQuota).get` is inlined into write; its `select` on the quota channel is the
    only selectgo call there. The branch testing selectgo's result runs once per wakeup
    from that wait, so a probe there costs nothing on sends that never stall (unlike a
    RET probe, which fires on every send and is executed out of line: two traps).
    """
    if binary.arch != "amd64":
        return []
    import capstone

    sel = binary.symbols.function("runtime.selectgo")
    if sel is None:
        return []
    f = binary.function(func)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insns = list(md.disasm_lite(binary.image.read(f.entry, f.size), f.entry))
    out = []
    for i, (_addr, _size, mnem, ops) in enumerate(insns):
        if mnem != "call" or ops != hex(sel.entry):
            continue
        # Go 1.27 pads the call site with a `nop`: skip nops, then `test`, then the jcc
        rest = [x for x in insns[i + 1 : i + 5] if x[2] != "nop"]
        jcc = len(rest) >= 2 and rest[1][2].startswith("j") and rest[1][2] != "jmp"
        if jcc and rest[0][2] == "test":
            out.append(rest[1][0])
    return out


def _first_existing(binary: GoBinary, names: Sequence[str], grpc_version: str) -> str | None:
    """The function variant this grpc-go has: `write` since 1.69, `Write` up to 1.68
    (the version picks the order; the symbol table decides)."""
    order = list(names)
    if len(order) > 1 and _version_tuple(grpc_version) <= (1, 68, 99):
        order.reverse()
    for n in order:
        if binary.symbols.function(n) is not None:
            return n
    return None


def _version_tuple(v: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", v or "")
    return (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)


def _dwarf_offsets(binary: GoBinary) -> tuple[dict[str, int], list[str]]:
    """grpc_offsets from DWARF; a missing field reads as 0 (= not read) plus a note."""
    lost: list[str] = []
    fo = binary.field_offset

    def stream_id(type_name: str) -> int | None:
        # 1.69+: ClientStream/ServerStream embed Stream; ≤1.68: write takes *Stream
        return fo(type_name, "Stream.id") if fo(type_name, "Stream") is not None else None

    o: dict[str, int] = {}
    flags = 0
    cs, ss = stream_id(T + "ClientStream"), stream_id(T + "ServerStream")
    if cs is None and ss is None:
        cs = ss = fo(T + "Stream", "id")
    if cs is not None and cs == ss:
        o["stream_id"] = cs  # 0 in ≤1.68 (Stream.id is its first field): hence the flag
        flags |= O_STREAM_ID
    else:
        lost.append("stream ids of flow-control waits (Stream.id offset unknown)")
    frames = {
        "fh_flags": fo(H2 + "FrameHeader", "Flags"),
        "fh_stream_id": fo(H2 + "FrameHeader", "StreamID"),
        "wu_increment": fo(H2 + "WindowUpdateFrame", "Increment"),
        "ping_data": fo(H2 + "PingFrame", "Data"),
        "p_ack": fo(T + "ping", "ack"),
        "p_data": fo(T + "ping", "data"),
    }
    goaway = {
        "ga_last_stream": fo(H2 + "GoAwayFrame", "LastStreamID"),
        "ga_code": fo(H2 + "GoAwayFrame", "ErrCode"),
        "ga_debug": fo(H2 + "GoAwayFrame", "debugData"),
        "og_code": fo(T + "goAway", "code"),
        "og_debug": fo(T + "goAway", "debugData"),
        "og_heads_up": fo(T + "goAway", "headsUp"),
    }
    if None not in frames.values():
        o.update(frames)  # type: ignore[arg-type]
    else:
        o.update(_FRAME_FALLBACK)
    flags |= O_FRAMES
    if None not in goaway.values():
        o.update(goaway)  # type: ignore[arg-type]
        flags |= O_GOAWAY
    else:
        lost.append("GOAWAY code and debug data (GoAwayFrame/goAway need DWARF)")
    for key, (typ, fld) in {
        "cli_framer": (T + "http2Client", "framer"),
        "srv_framer": (T + "http2Server", "framer"),
        "loopy_framer": (T + "loopyWriter", "framer"),
        "loopy_goaway_fn": (T + "loopyWriter", "ssGoAwayHandler"),
        "srv_min_time": (T + "http2Server", "kep.MinTime"),
        "cli_ka_time": (T + "http2Client", "kp.Time"),
        "cli_loopy": (T + "http2Client", "loopy"),
        "srv_loopy": (T + "http2Server", "loopy"),
        "loopy_oiws": (T + "loopyWriter", "oiws"),
    }.items():
        v = fo(typ, fld)
        o[key] = v or 0
    if not (o["loopy_goaway_fn"] or (o["loopy_framer"] and o["cli_framer"])):
        lost.append("connection of pings sent (loopyWriter layout needs DWARF)")
    o["flags"] = flags
    return o, lost


def plan_for(path: str) -> GrpcProbePlan:
    """Probe plan for one Go binary linking grpc-go; GoBinaryError when it does not."""
    binary = open_go_binary(path)
    cached = _PLANS.get(id(binary))
    if cached is not None and cached[0] is binary:
        return cached[1]
    version = binary.module_version(GRPC_MODULE)
    if version is None:
        raise GoBinaryError(f"{path}: does not link {GRPC_MODULE}")
    layout = binary.runtime_layout
    if not layout.usable:
        raise GoBinaryError(f"{path}: {layout.log_line(path)}")
    offsets, lost = _dwarf_offsets(binary)
    offsets["goid"] = layout["g.goid"]
    plan = GrpcProbePlan(path, version, offsets)
    entries: list[tuple[str, list[tuple[str, str, int]], int]] = []  # (family, pts, index)
    for fam, probes in FAMILIES.items():
        pts: list[tuple[str, str, int]] = []
        for names, prog, at in probes:
            func = _first_existing(binary, names, version)
            if func is None:
                if prog not in ("grpc_client_goaway_sent",):  # absent before 1.6x: fine
                    lost.append(f"{prog}: none of {', '.join(names)} in the binary")
                continue
            plan.functions[prog] = func
            if at == "wake":
                wakes = quota_wake_points(binary, func)
                if len(wakes) == 1:
                    pts += [(func, prog, wakes[0])]
                    continue
                prog, at = "grpc_write_ret", "ret"  # not found: exits by RET probes
                plan.functions[prog] = func
            if at == "ret":
                rets = binary.ret_probes(func)
                if not rets:
                    lost.append(f"{func}: no RET found")
                pts += [(func, prog, p.vaddr) for p in rets]
            else:
                entries.append((fam, pts, len(pts)))
                pts.append((func, prog, binary.entry_probe(func).vaddr))
        plan.points[fam] = pts
    # entry probes move to the stack-check branch when every entry has one (the BPF
    # side's morestack test is per pid, so it is all or nothing)
    moved = [stack_check_branch(binary, pts[i][0]) for _f, pts, i in entries]
    if entries and all(m is not None for m in moved):
        for (_f, pts, i), addr in zip(entries, moved, strict=True):
            pts[i] = (pts[i][0], pts[i][1], addr)  # type: ignore[assignment]
        offsets["flags"] |= O_AT_STACK_CHECK
    if lost:
        plan.degraded = [f"{path} (grpc-go {version}): lost: " + "; ".join(lost)]
    _PLANS[id(binary)] = (binary, plan)
    return plan


class GrpcProbes:
    """Attaches the grpc-go probe families of one BCC module to target processes.

    Uprobes once per binary (uprobes.BinaryUprobes); the programs act only for pids in
    `grpc_offsets`."""

    def __init__(
        self,
        bpf: Any,
        families: Iterable[str] = ALL_FAMILIES,
        flow_threshold_ns: int = 1_000_000,
    ) -> None:
        unknown = set(families) - ALL_FAMILIES
        if unknown:
            raise ValueError(f"grpc families: expected {sorted(ALL_FAMILIES)}, got {unknown}")
        self._bpf = bpf
        self.families = frozenset(families)
        self.flow_threshold_ns = flow_threshold_ns
        self._probes: BinaryUprobes[GrpcProbePlan] = BinaryUprobes(bpf, "grpc", "grpc_offsets")

    def attach(self, pid: int, exe: str) -> GrpcProbePlan:
        """Observe `pid`; GoBinaryError when its binary has no grpc-go."""

        def points(path: str, plan: GrpcProbePlan) -> list[tuple[str, int]]:
            image = open_go_binary(path).image
            return [
                (prog, image.vaddr_to_offset(addr))
                for _f, prog, addr in plan.probe_points(sorted(self.families))
            ]

        plan = self._probes.attach(pid, exe, plan_for, points, lambda p: p.degraded)
        table = self._bpf["grpc_offsets"]
        leaf = table.Leaf()
        leaf.threshold_ns = self.flow_threshold_ns
        for name, value in plan.offsets.items():
            setattr(leaf, name, value)
        table[table.Key(pid)] = leaf
        return plan

    def detach(self, pid: int) -> None:
        self._probes.detach(pid)

    def reap_idle(self) -> None:
        self._probes.reap_idle()

    def close(self) -> None:
        self._probes.close()

    def plan(self, pid: int) -> GrpcProbePlan | None:
        return self._probes.plan(pid)

    def hits(self) -> dict[str, int]:
        """Probe hits since load, summed over CPUs (benchmarks: hits per RPC)."""
        table = self._bpf["grpc_hits"]
        return {name: int(sum(table[ct.c_int(i)])) for i, name in enumerate(HIT_NAMES)}

    def lost(self) -> int:
        return int(sum(self._bpf["grpc_lost"][ct.c_int(0)]))


class _Clock(Protocol):
    def to_wall(self, mono_ns: int) -> int: ...


def _debug_text(r: GrpcEvent) -> str:
    return bytes(r.debug)[: r.debug_len].decode("utf-8", errors="replace")


def _close_reason(r: GrpcEvent) -> str:
    """The Close error's text, or "" when its value did not start with a string (the
    probe copies the first field of whatever the error points at: bytes that are not
    printable UTF-8 were not a message)."""
    raw = bytes(r.debug)[: r.debug_len]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return text if text.isprintable() else ""


def grpc_events(records: Iterable[GrpcEvent], clock: _Clock) -> list[Event]:
    """Events of kind "grpc" (source "ebpf") for grpc_event records; see GRPC.md for attrs."""
    out: list[Event] = []
    for r in records:
        flags = r.flags
        attrs: dict[str, Any] = {
            "conn": f"0x{r.conn:x}" if r.conn else "",
            "side": "server" if flags & F_SERVER else "client",
            "direction": "sent" if flags & F_SENT else "received",
        }
        kind = r.kind
        if kind == GRPC_WRITE_WAIT:
            attrs.update(type="flow_control_wait", stream_id=r.stream_id, bytes=r.value)
            window = int.from_bytes(bytes(r.data[:4]), "little")
            if window:
                attrs["stream_window"] = window
        elif kind == GRPC_WINDOW_UPDATE:
            attrs.update(type="window_update")
            if flags & F_DECODED:
                attrs.update(stream_id=r.stream_id, increment=r.value)
        elif kind == GRPC_PING:
            attrs.update(type="ping", ack=bool(flags & F_ACK))
            if flags & F_DECODED:
                data = bytes(r.data)
                attrs["purpose"] = _PING_PURPOSE.get(data, "other")
                attrs["data"] = data.hex()
            if r.value and not flags & F_SENT:
                # the receiving transport's own setting, read beside the frame
                key = "enforcement_min_time_ms" if flags & F_SERVER else "keepalive_time_ms"
                attrs[key] = r.value
        elif kind == GRPC_GOAWAY:
            attrs.update(type="goaway")
            if flags & F_DECODED:
                attrs.update(
                    code=r.value,
                    code_name=HTTP2_CODES.get(r.value, f"0x{r.value:x}"),
                    debug_data=_debug_text(r),
                )
                if flags & F_SENT:
                    attrs["heads_up"] = bool(flags & F_HEADS_UP)
                else:
                    attrs["last_stream_id"] = r.stream_id
        elif kind == GRPC_CLOSE:
            reason = _close_reason(r)
            keepalive = bool(_KEEPALIVE_CLOSE.search(reason))
            attrs.update(type="keepalive_timeout" if keepalive else "transport_close")
            attrs["reason"] = reason
            attrs.pop("direction")
        else:
            continue
        start = clock.to_wall(r.start_ns)
        end = start if r.end_ns == r.start_ns else clock.to_wall(r.end_ns)
        out.append(Event("grpc", r.pid, r.tid, r.goid, start, end, attrs, source="ebpf"))
    return out


# ---------------------------------------------------------------- metrics

# the event types grpc_metrics reads
METRIC_TYPES = frozenset({"flow_control_wait", "goaway", "ping"})
# explicit bounds (ms) of the flow-control wait histogram: 1 ms (the default threshold)
# to 10 s, roughly x2.5 per bucket
WAIT_BOUNDS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0)


def grpc_metrics(
    events: Iterable[Event],
    resource_of: Any = None,
    *,
    start_ns: int = 0,
    time_ns: int | None = None,
) -> Any:
    """An OTLP ExportMetricsServiceRequest (delta temporality) summarizing grpc events:

    - `goblock.grpc.flow_control.wait` histogram (ms) by process and side;
    - `goblock.grpc.goaways` sum by process, code name, direction;
    - `goblock.grpc.pings` sum by process, connection, direction, ack.

    `resource_of(pid) -> dict[str, Any]` gives each process's resource attributes
    (default: just process.pid). One ResourceMetrics per pid.
    """
    import bisect

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m

    now = time.time_ns() if time_ns is None else time_ns
    waits: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    goaways: dict[int, Counter[tuple[str, str]]] = defaultdict(Counter)
    pings: dict[int, Counter[tuple[str, str, bool]]] = defaultdict(Counter)
    for e in events:
        if e.kind != "grpc":
            continue
        a = e.attrs
        typ = a.get("type")
        if typ == "flow_control_wait":
            waits[e.pid][a.get("side", "")].append(e.duration_ns / 1e6)
        elif typ == "goaway":
            goaways[e.pid][(a.get("code_name", "unknown"), a.get("direction", ""))] += 1
        elif typ == "ping":
            pings[e.pid][(a.get("conn", ""), a.get("direction", ""), bool(a.get("ack")))] += 1

    def kv(attrs: dict[str, Any]) -> list[Any]:
        out = []
        for k, v in attrs.items():
            if isinstance(v, bool):
                out.append(KeyValue(key=k, value=AnyValue(bool_value=v)))
            elif isinstance(v, int):
                out.append(KeyValue(key=k, value=AnyValue(int_value=v)))
            else:
                out.append(KeyValue(key=k, value=AnyValue(string_value=str(v))))
        return out

    req = ExportMetricsServiceRequest()
    delta = m.AGGREGATION_TEMPORALITY_DELTA
    for pid in sorted(set(waits) | set(goaways) | set(pings)):
        rm = req.resource_metrics.add()
        rm.resource.attributes.extend(kv(resource_of(pid) if resource_of else {"process.pid": pid}))
        sm = rm.scope_metrics.add()
        sm.scope.name = "otel_goblock.receivers.ebpf.grpc"
        if waits.get(pid):
            metric = sm.metrics.add(
                name="goblock.grpc.flow_control.wait",
                unit="ms",
                description="send-side waits for HTTP/2 flow-control window / write quota",
            )
            metric.histogram.aggregation_temporality = delta
            for side, values in sorted(waits[pid].items()):
                counts = [0] * (len(WAIT_BOUNDS_MS) + 1)
                for v in values:
                    counts[bisect.bisect_left(WAIT_BOUNDS_MS, v)] += 1
                metric.histogram.data_points.add(
                    attributes=kv({"rpc.grpc.side": side}),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now,
                    count=len(values),
                    sum=sum(values),
                    min=min(values),
                    max=max(values),
                    bucket_counts=counts,
                    explicit_bounds=WAIT_BOUNDS_MS,
                )
        for name, desc, counter, keys in (
            (
                "goblock.grpc.goaways",
                "HTTP/2 GOAWAY frames",
                goaways.get(pid),
                ("code", "direction"),
            ),
            (
                "goblock.grpc.pings",
                "HTTP/2 PING frames",
                pings.get(pid),
                ("conn", "direction", "ack"),
            ),
        ):
            if not counter:
                continue
            metric = sm.metrics.add(name=name, unit="{frame}", description=desc)
            metric.sum.aggregation_temporality = delta
            metric.sum.is_monotonic = True
            for key, n in sorted(counter.items()):
                metric.sum.data_points.add(
                    attributes=kv(dict(zip(keys, key, strict=True))),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now,
                    as_int=n,
                )
    return req
