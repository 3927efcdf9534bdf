"""The one Python definition of each record the BPF side emits (bpf/goblock.h).

Each layout is a little-endian `struct` format with explicit padding, so it does not depend
on the host's C alignment rules; tests/ebpf/test_decode_layout.py compiles goblock.h with
BCC and checks every field's offset and each struct's size against these.  The poll thread
decodes up to a million and more records a second, so nothing here runs Python per field:
a ring drain (receivers/ebpf/ring.py) is decoded with one `struct.iter_unpack` (a tuple
per record) or, on the syscall hot path, with `columns` (a list per field, no per-record
object at all); naming (syscall names, fd targets, addresses) is done once per record that
becomes an `Event`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from otel_goblock.pdata import Event


@dataclass(frozen=True)
class Layout:
    c_name: str
    fmt: str
    fields: tuple[str, ...]  # names as in the C struct; "_pad" entries are padding

    @property
    def struct(self) -> struct.Struct:
        return struct.Struct(self.fmt)

    @property
    def size(self) -> int:
        return struct.calcsize(self.fmt)

    def codes(self) -> dict[str, str]:
        """The struct format code of each named field (padding fields excluded)."""
        codes = _tokens(struct.Struct(self.fmt).format.lstrip("<"))
        return {n: c for n, c in zip(self.fields, codes, strict=True) if not n.startswith("_")}

    def offsets(self) -> dict[str, int]:
        """Byte offset of each named field (padding fields excluded)."""
        out, pos = {}, 0
        codes = struct.Struct(self.fmt).format.lstrip("<")
        items = [m for m in _tokens(codes)]
        if len(items) != len(self.fields):
            raise ValueError(f"{self.c_name}: {len(items)} format items, {len(self.fields)} names")
        for name, code in zip(self.fields, items, strict=True):
            if not name.startswith("_"):
                out[name] = pos
            pos += struct.calcsize("<" + code)
        return out


def _tokens(codes: str) -> list[str]:
    toks, num = [], ""
    for ch in codes:
        if ch.isdigit():
            num += ch
        else:
            toks.append(num + ch)
            num = ""
    return toks


SYSCALL_EVENT = Layout(
    "syscall_event",
    "<QQQqQIIIIQ48s",
    ("start_ns", "end_ns", "goid", "ret", "arg0", "pid", "tid", "nr", "mode", "ino", "fd_name"),
)
SCHED_EVENT = Layout(
    "sched_event",
    "<QQQQIIBB6x",
    ("start_ns", "end_ns", "goid", "runq_ns", "pid", "tid", "kind", "state", "_pad"),
)
TCP_EVENT = Layout(
    "tcp_event",
    "<QQIIIIIIiiHHHBB16s16s",
    (
        "ts_ns",
        "skaddr",
        "pid",
        "tid",
        "srtt_us",
        "snd_wnd",
        "rcv_wnd",
        "snd_cwnd",
        "oldstate",
        "newstate",
        "family",
        "sport",
        "dport",
        "type",
        "_pad",
        "saddr",
        "daddr",
    ),
)
PROC_EVENT = Layout(
    "proc_event",
    "<QIIB7x16s128s",
    ("ts_ns", "pid", "tid", "kind", "_pad", "comm", "filename"),
)
GO_EVENT = Layout(
    "go_event",
    "<QQQQIIBBB5x16s8s",
    (
        "start_ns",
        "end_ns",
        "goid",
        "aux",
        "pid",
        "tid",
        "kind",
        "reason",
        "flags",
        "_pad",
        "trace_id",
        "span_id",
    ),
)
LAYOUTS = (SYSCALL_EVENT, SCHED_EVENT, TCP_EVENT, PROC_EVENT, GO_EVENT)

# constants mirrored from goblock.h (the layout test checks them too)
SCHED_OFFCPU, SCHED_RUNQ = 1, 2
OFFCPU_STATES = {1: "blocked", 2: "preempted"}
RUNQ_CAUSES = {1: "wakeup", 2: "preempted", 3: "new"}
TCP_TYPES = {
    1: "retransmit",
    2: "reset_sent",
    3: "reset_received",
    4: "state",
    5: "probe",
    6: "zero_window",
    7: "error",
}
PROC_EXEC, PROC_EXIT = 1, 2
GO_PARK, GO_STW, GO_ASSIST, GO_LINEAGE, GO_SPAN_END, GO_GC_START = 1, 2, 3, 4, 5, 6
PARK_ENDS = {1: "ready", 2: "resumed"}
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

_SYSCALL = SYSCALL_EVENT.struct
_SCHED = SCHED_EVENT.struct
_TCP = TCP_EVENT.struct
_PROC = PROC_EVENT.struct
unpack_syscall = _SYSCALL.unpack_from
unpack_sched = _SCHED.unpack_from
unpack_tcp = _TCP.unpack_from
unpack_proc = _PROC.unpack_from
unpack_go = GO_EVENT.struct.unpack_from


def columns(
    layout: Layout, region: bytes, stride: int, names: tuple[str, ...], base: int = 8
) -> list[list]:
    """Fields of `layout` records laid out every `stride` bytes from `base` (a ring drain:
    receivers/ebpf/ring.py), one list per field of `names`, each read with one strided
    memoryview and `tolist()`: a column of ints costs no Python call per record and, unlike
    a tuple per record, no object the garbage collector tracks (a batch's tuples made the
    collector's passes over young objects a large part of a drain's CPU)."""
    return columns_of(region, column_views(layout, stride, names, base))


def columns_of(region: bytes, views: tuple[tuple[str, int, int], ...]) -> list[list]:
    """`columns` with the views worked out beforehand (column_views): the hot path's form."""
    mv = memoryview(region)
    return [mv.cast(code)[first::step].tolist() for code, first, step in views]


def column_views(
    layout: Layout, stride: int, names: tuple[str, ...], base: int = 8
) -> tuple[tuple[str, int, int], ...]:
    """(memoryview format, first item, step) of each column of `columns`."""
    offsets, codes = layout.offsets(), layout.codes()
    out = []
    for name in names:
        code = codes[name]
        size = struct.calcsize(code)
        pos = base + offsets[name]
        if pos % size or stride % size or code.endswith(("s", "x")):
            raise ValueError(f"{layout.c_name}.{name}: not a column of aligned integers")
        out.append((code, pos // size, stride // size))
    return tuple(out)


_ADDR_TEXT: dict[tuple[int, bytes], str] = {}
_ADDR_TEXT_MAX = 4096


def addr_text(family: int, raw: bytes) -> str:
    """An address field of a TCP record as text; a host talks to few distinct addresses,
    so answers are kept (two per TCP event: `ipaddress` made them ~40 % of its decode)."""
    key = (family, raw)
    text = _ADDR_TEXT.get(key)
    if text is None:
        if family == 2:
            text = socket.inet_ntop(socket.AF_INET, raw[:4])
        elif family == 10:
            a = ipaddress.IPv6Address(raw[:16])
            text = str(a.ipv4_mapped or a)
        else:
            return ""
        if len(_ADDR_TEXT) >= _ADDR_TEXT_MAX:
            _ADDR_TEXT.clear()
        _ADDR_TEXT[key] = text
    return text


def sched_event(rec: tuple, to_wall: int) -> Event:
    """`rec` from unpack_sched; `to_wall` is the REALTIME - MONOTONIC offset."""
    start, end, goid, runq_ns, pid, tid, kind, state = rec
    if kind == SCHED_OFFCPU:
        return Event(
            "offcpu",
            pid,
            tid,
            goid,
            start + to_wall,
            end + to_wall,
            {"state": OFFCPU_STATES.get(state, str(state)), "runq_ns": runq_ns},
            "ebpf",
        )
    return Event(
        "runqueue",
        pid,
        tid,
        goid,
        start + to_wall,
        end + to_wall,
        {"after": RUNQ_CAUSES.get(state, str(state))},
        "ebpf",
    )


def sched_events(recs: list[tuple], to_wall: int) -> list[Event]:
    """A drain of sched records (each as from unpack_sched, or a ring slot's tuple) as
    Events: sched_event's work inline, the per-record call and lookups hoisted out of a
    loop that runs for every context switch of a target."""
    out: list[Event] = []
    append = out.append
    offcpu_states, runq_causes = OFFCPU_STATES, RUNQ_CAUSES
    for start, end, goid, runq_ns, pid, tid, kind, state in recs:
        if kind == SCHED_OFFCPU:
            name = offcpu_states.get(state) or str(state)
            attrs: dict = {"state": name, "runq_ns": runq_ns}
            append(Event("offcpu", pid, tid, goid, start + to_wall, end + to_wall, attrs, "ebpf"))
        else:
            attrs = {"after": runq_causes.get(state) or str(state)}
            append(Event("runqueue", pid, tid, goid, start + to_wall, end + to_wall, attrs, "ebpf"))
    return out


def tcp_event(rec: tuple, to_wall: int) -> Event:
    (
        ts,
        _skaddr,
        pid,
        tid,
        srtt,
        snd_wnd,
        rcv_wnd,
        cwnd,
        old,
        new,
        family,
        sport,
        dport,
        typ,
        _pad,
        saddr,
        daddr,
    ) = rec
    name = TCP_TYPES.get(typ, str(typ))
    attrs: dict = {
        "type": name,
        "saddr": addr_text(family, saddr),
        "sport": sport,
        "daddr": addr_text(family, daddr),
        "dport": dport,
    }
    if name in ("probe", "zero_window"):
        attrs.update(srtt_us=srtt, snd_wnd=snd_wnd, rcv_wnd=rcv_wnd, snd_cwnd=cwnd)
        if name == "zero_window":
            attrs["side"] = "peer" if snd_wnd == 0 else "local"
    elif name == "state":
        attrs["old_state"] = TCP_STATES.get(old, str(old))
        attrs["new_state"] = TCP_STATES.get(new, str(new))
    elif name == "error":
        attrs["error"] = new
    elif name in ("retransmit", "reset_sent") or (name == "reset_received" and new):
        attrs["state"] = TCP_STATES.get(new, str(new))
    return Event("tcp", pid, tid, 0, ts + to_wall, ts + to_wall, attrs, "ebpf")


def tcp_events(recs: list[tuple], to_wall: int) -> list[Event]:
    """A drain of TCP records as Events, as tcp_event makes them: state changes and probe
    samples (under connection churn ~10 per request, most of a service's events) inline,
    with the lookups hoisted out of the loop; the rarer kinds through tcp_event."""
    out: list[Event] = []
    append = out.append
    types, states, text = TCP_TYPES, TCP_STATES, addr_text
    for rec in recs:
        ts, _sk, pid, tid, srtt, snd, rcv, cwnd, old, new, fam, sport, dport, typ, _p, sa, da = rec
        name = types.get(typ)
        if name == "state":
            attrs: dict = {
                "type": name,
                "saddr": text(fam, sa),
                "sport": sport,
                "daddr": text(fam, da),
                "dport": dport,
                "old_state": states.get(old) or str(old),
                "new_state": states.get(new) or str(new),
            }
        elif name == "probe":
            attrs = {
                "type": name,
                "saddr": text(fam, sa),
                "sport": sport,
                "daddr": text(fam, da),
                "dport": dport,
                "srtt_us": srtt,
                "snd_wnd": snd,
                "rcv_wnd": rcv,
                "snd_cwnd": cwnd,
            }
        else:
            append(tcp_event(rec, to_wall))
            continue
        ts += to_wall
        append(Event("tcp", pid, tid, 0, ts, ts, attrs, "ebpf"))
    return out


def go_event(
    rec: tuple, to_wall: int, wait_reasons: dict[int, str], stw_reasons: dict[int, str]
) -> Event | None:
    """A Go runtime uprobe record as an Event; reasons are named by the target binary's own
    tables (waitReason numbering changes between Go releases, DESIGN §5)."""
    start, end, goid, aux, pid, tid, kind, reason, flags, trace_id, span_id = rec
    start += to_wall
    end += to_wall
    if kind == GO_PARK:
        name = wait_reasons.get(reason) or f"waitReason({reason})"
        return Event(
            "park",
            pid,
            tid,
            goid,
            start,
            end,
            {"reason": name, "end": PARK_ENDS.get(flags, "")},
            "ebpf",
        )
    if kind == GO_SPAN_END:
        return Event(
            "span_marker",
            pid,
            tid,
            goid,
            start,
            end,
            {"trace_id": trace_id.hex(), "span_id": span_id.hex()},
            "ebpf",
        )
    if kind == GO_LINEAGE:
        return Event(
            "lineage", pid, tid, goid, start, end, {"parent_goid": aux, "child_goid": goid}, "ebpf"
        )
    if kind == GO_STW:
        name = stw_reasons.get(reason) or f"stwReason({reason})"
        return Event("gc_stw", pid, tid, 0, start, end, {"reason": name}, "ebpf")
    if kind == GO_ASSIST:
        return Event("gc_assist", pid, tid, goid, start, end, {}, "ebpf")
    if kind == GO_GC_START:
        return Event("gc_start", pid, tid, 0, start, end, {}, "ebpf")
    return None
