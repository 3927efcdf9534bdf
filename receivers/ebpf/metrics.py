"""OTLP metrics from the kernel's aggregation maps.

The BPF programs keep cumulative log2(µs) histograms (slot k counts [2^k, 2^(k+1)) µs,
slot 0 also counts < 1 µs) and per-peer TCP counters; this module turns one read of those
maps into an ExportMetricsServiceRequest with cumulative temporality (start time = when
the receiver attached).  Explicit bucket bounds are the slots' upper edges in seconds.

The histograms are per-CPU arrays (bpf/goblock.h): `sum_cpus` adds one read's per-CPU
values up, `syscall_aggregates` / `sched_aggregates` turn the flat arrays into the keyed
dicts `build` takes (only non-zero entries).
"""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Iterable, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from otel_goblock.receivers.ebpf.decode import (
    OFFCPU_STATES,
    SCHED_OFFCPU,
    SCHED_RUNQ,
    TCP_STATES,
    TCP_TYPES,
)

HIST_SLOTS = 32
# mirrored from bpf/goblock.h (checked by tests/ebpf/test_decode_layout.py)
SYSCALL_NR_MAX = 512
SCHED_HIST_RUNQ, SCHED_HIST_OFFCPU_BLOCKED, SCHED_HIST_OFFCPU_PREEMPTED = 0, 1, 2
SCHED_HIST_SERIES = 3
TCP_STATE_SLOTS = 16
# bucket i = (bound[i-1], bound[i]]: bound[k] = 2^(k+1) µs, in seconds
BOUNDS_S = [2 ** (k + 1) / 1e6 for k in range(HIST_SLOTS - 1)]
CUMULATIVE = m.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
SCOPE = "otel_goblock/receivers/ebpf"


def sum_cpus(values: Sequence[int], ncpu: int) -> list[int]:
    """Per-entry totals of a per-CPU array read laid out entry-major (entry 0 on every CPU,
    then entry 1, ...), as BPF_MAP_LOOKUP_BATCH returns it."""
    if ncpu == 1:
        return list(values)
    flat = list(values)
    return [sum(col) for col in zip(*(flat[c::ncpu] for c in range(ncpu)), strict=True)]


def syscall_aggregates(
    hist: Sequence[int], sums: Sequence[int]
) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """(nr, slot) → count and nr → summed ns from the flat syscall arrays (index
    nr * HIST_SLOTS + slot, resp. nr)."""
    out = {(i // HIST_SLOTS, i % HIST_SLOTS): n for i, n in enumerate(hist) if n}
    return out, {nr: ns for nr, ns in enumerate(sums) if ns}


def state_aggregates(counts: Sequence[int]) -> dict[tuple[int, int], int]:
    """(old, new) → transitions from the flat tcp_state_counts array (index old *
    TCP_STATE_SLOTS + new; only non-zero entries)."""
    return {divmod(i, TCP_STATE_SLOTS): n for i, n in enumerate(counts) if n}


_SCHED_SERIES = {
    SCHED_HIST_RUNQ: (SCHED_RUNQ, 0),
    SCHED_HIST_OFFCPU_BLOCKED: (SCHED_OFFCPU, 1),  # OFFCPU_BLOCKED
    SCHED_HIST_OFFCPU_PREEMPTED: (SCHED_OFFCPU, 2),  # OFFCPU_PREEMPTED
}


def sched_aggregates(hist: Sequence[int]) -> dict[tuple[int, int, int], int]:
    """(kind, sub, slot) → count from the flat sched array (index series * HIST_SLOTS +
    slot): kind SCHED_RUNQ with sub 0, or SCHED_OFFCPU with the off-CPU state as sub."""
    out = {}
    for i, n in enumerate(hist):
        if n and i // HIST_SLOTS in _SCHED_SERIES:
            kind, sub = _SCHED_SERIES[i // HIST_SLOTS]
            out[(kind, sub, i % HIST_SLOTS)] = n
    return out


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _buckets(slots: dict[int, int]) -> list[int]:
    counts = [0] * HIST_SLOTS
    for slot, n in slots.items():
        counts[min(slot, HIST_SLOTS - 1)] += n
    return counts


def _midpoint_sum(slots: dict[int, int]) -> float:
    """Sum estimate from bucket midpoints (seconds) when the kernel keeps no exact sum."""
    return sum(n * (1.5 * 2**s if s else 1.0) / 1e6 for s, n in slots.items())


def _hist_metric(
    name: str,
    desc: str,
    series: Iterable[tuple[dict, dict[int, int], float | None]],
    start_ns: int,
    now_ns: int,
) -> m.Metric:
    metric = m.Metric(name=name, description=desc, unit="s")
    metric.histogram.aggregation_temporality = CUMULATIVE
    for attrs, slots, total in series:
        counts = _buckets(slots)
        dp = metric.histogram.data_points.add(
            start_time_unix_nano=start_ns,
            time_unix_nano=now_ns,
            count=sum(counts),
            bucket_counts=counts,
            explicit_bounds=BOUNDS_S,
        )
        dp.sum = total if total is not None else _midpoint_sum(slots)
        dp.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return metric


def _peer(family: int, raw: bytes) -> str:
    try:
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[:4])
        if family == socket.AF_INET6:
            return socket.inet_ntop(socket.AF_INET6, raw[:16])
    except ValueError:
        pass
    return ""


def build(
    *,
    syscall_hist: dict[tuple[int, int], int],
    syscall_sum: dict[int, int],
    sched_hist: dict[tuple[int, int, int], int],
    tcp_counts: dict[tuple[int, bytes, int, int], int],
    syscall_name,
    tcp_states: dict[tuple[int, int], int] | None = None,
    start_ns: int,
    now_ns: int,
    resource_attrs: dict[str, str],
) -> ExportMetricsServiceRequest:
    """One cumulative snapshot of every kernel aggregate, as an OTLP request."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(_kv(k, v) for k, v in resource_attrs.items())
    sm = rm.scope_metrics.add()
    sm.scope.name = SCOPE

    by_nr: dict[int, dict[int, int]] = defaultdict(dict)
    for (nr, slot), n in syscall_hist.items():
        by_nr[nr][slot] = n
    if by_nr:
        sm.metrics.append(
            _hist_metric(
                "goblock.syscall.duration",
                "Duration of syscalls of target processes",
                (
                    ({"syscall": syscall_name(nr)}, slots, syscall_sum.get(nr, 0) / 1e9)
                    for nr, slots in sorted(by_nr.items())
                ),
                start_ns,
                now_ns,
            )
        )
    runq: dict[int, int] = {}
    offcpu: dict[int, dict[int, int]] = defaultdict(dict)
    for (kind, sub, slot), n in sched_hist.items():
        if kind == SCHED_RUNQ:
            runq[slot] = runq.get(slot, 0) + n
        elif kind == SCHED_OFFCPU:
            offcpu[sub][slot] = n
    if runq:
        sm.metrics.append(
            _hist_metric(
                "goblock.runqueue.latency",
                "Time target threads waited runnable for a CPU",
                [({}, runq, None)],
                start_ns,
                now_ns,
            )
        )
    if offcpu:
        sm.metrics.append(
            _hist_metric(
                "goblock.offcpu.duration",
                "Off-CPU intervals of target threads, by state",
                (
                    ({"state": OFFCPU_STATES.get(s, str(s))}, slots, None)
                    for s, slots in sorted(offcpu.items())
                ),
                start_ns,
                now_ns,
            )
        )
    names = {
        "retransmit": "goblock.tcp.retransmits",
        "reset_sent": "goblock.tcp.resets",
        "reset_received": "goblock.tcp.resets",
        "zero_window": "goblock.tcp.zero_windows",
    }
    sums: dict[str, m.Metric] = {}
    for (typ, daddr, family, dport), n in sorted(tcp_counts.items()):
        tname = TCP_TYPES.get(typ, "")
        mname = names.get(tname)
        if mname is None:
            continue
        metric = sums.get(mname)
        if metric is None:
            metric = m.Metric(
                name=mname,
                unit="{event}",
                description="TCP trouble on sockets of target processes, by peer",
            )
            metric.sum.aggregation_temporality = CUMULATIVE
            metric.sum.is_monotonic = True
            sums[mname] = metric
        dp = metric.sum.data_points.add(
            start_time_unix_nano=start_ns, time_unix_nano=now_ns, as_int=n
        )
        attrs = {"network.peer.address": _peer(family, daddr), "network.peer.port": dport}
        if mname == "goblock.tcp.resets":
            attrs["direction"] = "sent" if tname == "reset_sent" else "received"
        dp.attributes.extend(_kv(k, v) for k, v in attrs.items())
    sm.metrics.extend(sums.values())
    if tcp_states:
        # every state change of a target's sockets (most never leave the kernel as events)
        metric = sm.metrics.add(
            name="goblock.tcp.state_changes",
            unit="{transition}",
            description="TCP state changes of sockets of target processes, by old and new state",
        )
        metric.sum.aggregation_temporality = CUMULATIVE
        metric.sum.is_monotonic = True
        for (old, new), n in sorted(tcp_states.items()):
            dp = metric.sum.data_points.add(
                start_time_unix_nano=start_ns, time_unix_nano=now_ns, as_int=n
            )
            dp.attributes.extend(
                (
                    _kv("old_state", TCP_STATES.get(old, str(old))),
                    _kv("new_state", TCP_STATES.get(new, str(new))),
                )
            )
    return req
