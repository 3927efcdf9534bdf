"""The Python side of bpf/grpc.bpf.c without BPF: struct layouts against the C compiler,
constants against the source, probe plans of the real demo binaries, record decoding,
and the OTLP metrics made from events."""

from __future__ import annotations

import ctypes as ct
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from grpc_harness import BPF, build_demo
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from otel_goblock.receivers.ebpf import grpcprobes as gp

from otel_goblock.clock import MonotonicClock
from otel_goblock.golang.disasm import stack_check_branch
from otel_goblock.pdata import Event

SRC = (BPF / "grpc.bpf.c").read_text()


def _struct(name: str) -> str:
    start = SRC.index(f"struct {name} {{")
    return SRC[start : SRC.index("};", start) + 2]


def _compile_and_run(body: str, main: str) -> list[int]:
    prog = (
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n"
        "typedef uint64_t u64; typedef uint32_t u32; typedef uint16_t u16; typedef uint8_t u8;\n"
        f"#define GRPC_DEBUG_LEN 64\n{body}\nint main(void) {{ {main} }}\n"
    )
    with tempfile.TemporaryDirectory() as d:
        c, exe = Path(d) / "s.c", Path(d) / "s"
        c.write_text(prog)
        subprocess.run(["cc", "-o", str(exe), str(c)], check=True)
        return [int(x) for x in subprocess.check_output([str(exe)]).split()]


def test_grpc_event_layout_matches_the_c_struct() -> None:
    fields = [f[0] for f in gp.GrpcEvent._fields_]
    main = 'printf("%zu", sizeof(struct grpc_event));' + "".join(
        f'printf(" %zu", offsetof(struct grpc_event, {f}));' for f in fields
    )
    size, *offsets = _compile_and_run(_struct("grpc_event"), main)
    assert size == ct.sizeof(gp.GrpcEvent) == 128
    assert offsets == [getattr(gp.GrpcEvent, f).offset for f in fields]


def test_every_planned_offset_is_a_field_of_grpc_offsets() -> None:
    """attach() sets the BCC leaf by name: a key the C struct lacks would be lost."""
    c_fields = set(re.findall(r"\bu(?:32|64) (\w+);", _struct("grpc_offsets")))
    plan = gp.plan_for(str(build_demo()))
    assert set(plan.offsets) <= c_fields
    assert c_fields - set(plan.offsets) == {"threshold_ns", "_pad"}
    # the struct compiles, 8-aligned
    (size,) = _compile_and_run(
        _struct("grpc_offsets"), 'printf("%zu", sizeof(struct grpc_offsets));'
    )
    assert size % 8 == 0


def test_python_constants_mirror_the_c_defines() -> None:
    defines = dict(re.findall(r"#define (GRPC_\w+) (0x[0-9a-f]+|\d+)", SRC))
    val = {k: int(v, 0) for k, v in defines.items()}
    assert (val["GRPC_WRITE_WAIT"], val["GRPC_WINDOW_UPDATE"], val["GRPC_PING"]) == (
        gp.GRPC_WRITE_WAIT,
        gp.GRPC_WINDOW_UPDATE,
        gp.GRPC_PING,
    )
    assert (val["GRPC_GOAWAY"], val["GRPC_CLOSE"]) == (gp.GRPC_GOAWAY, gp.GRPC_CLOSE)
    assert (val["GRPC_F_ACK"], val["GRPC_F_SENT"], val["GRPC_F_SERVER"]) == (
        gp.F_ACK,
        gp.F_SENT,
        gp.F_SERVER,
    )
    assert (val["GRPC_F_HEADS_UP"], val["GRPC_F_DECODED"]) == (gp.F_HEADS_UP, gp.F_DECODED)
    assert (val["GRPC_O_GOAWAY"], val["GRPC_O_FRAMES"], val["GRPC_O_STREAM_ID"]) == (
        gp.O_GOAWAY,
        gp.O_FRAMES,
        gp.O_STREAM_ID,
    )
    assert val["GRPC_HIT_MAX"] == len(gp.HIT_NAMES)
    hits = sorted(
        (v, k) for k, v in val.items() if k.startswith("GRPC_HIT_") and k != "GRPC_HIT_MAX"
    )
    assert [k.removeprefix("GRPC_HIT_").lower() for _, k in hits] == [
        "write",
        "write_ret",
        "window_update",
        "ping_recv",
        "ping_sent",
        "goaway_recv",
        "goaway_sent",
        "close",
    ]


def test_plan_of_the_demo_uses_grpc_185_names_and_dwarf_offsets() -> None:
    plan = gp.plan_for(str(build_demo()))
    assert plan.grpc_version.startswith("v1.")
    assert plan.functions["grpc_client_write"].endswith("(*http2Client).write")
    assert plan.degraded == []
    o = plan.offsets
    # DESIGN §6: GoAwayFrame.ErrCode at +16, debug data at +24
    assert (o["ga_code"], o["ga_debug"]) == (16, 24)
    assert o["flags"] == gp.O_GOAWAY | gp.O_FRAMES | gp.O_STREAM_ID | gp.O_AT_STACK_CHECK
    assert len(plan.points["flow_control"]) >= 4  # two entries and their RETs


def test_plan_of_the_stripped_demo_says_goaway_needs_dwarf() -> None:
    stripped = build_demo().parent / "demo-service-stripped"
    plan = gp.plan_for(str(stripped))
    assert plan.offsets["flags"] == gp.O_FRAMES | gp.O_AT_STACK_CHECK
    assert len(plan.degraded) == 1 and "GOAWAY code and debug data" in plan.degraded[0]
    # functions come from .gopclntab: every probe point is still there
    full = gp.plan_for(str(build_demo()))
    assert {f: len(p) for f, p in plan.points.items()} == {
        f: len(p) for f, p in full.points.items()
    }


def test_binary_without_grpc_is_refused() -> None:
    from otel_goblock.golang.elfimage import GoBinaryError

    go = Path("/usr/local/go/bin/go")
    if not go.exists():
        pytest.skip("no Go toolchain binary to inspect")
    with pytest.raises(GoBinaryError, match=r"does not link google\.golang\.org/grpc"):
        gp.plan_for(str(go))


def _record(kind: int, flags: int, **kw: object) -> gp.GrpcEvent:
    r = gp.GrpcEvent(kind=kind, flags=flags, pid=7, tid=8, goid=9, conn=0xC000, **kw)
    return r


def test_records_decode_to_grpc_events() -> None:
    clock = MonotonicClock()
    goaway = _record(
        gp.GRPC_GOAWAY, gp.F_DECODED, value=11, stream_id=1, start_ns=5_000, end_ns=5_000
    )
    goaway.debug = b"too_many_pings"
    goaway.debug_len = 14
    wait = _record(
        gp.GRPC_WRITE_WAIT, gp.F_SENT, stream_id=3, value=16393, start_ns=1_000, end_ns=2_001_000
    )
    wait.data[:4] = list((65535).to_bytes(4, "little"))
    ping = _record(gp.GRPC_PING, gp.F_SENT | gp.F_SERVER | gp.F_ACK | gp.F_DECODED)
    ping.data[:] = [2, 4, 16, 16, 9, 14, 7, 7]
    close = _record(gp.GRPC_CLOSE, gp.F_SERVER)
    close.debug = b"keepalive ping not acked within timeout"
    close.debug_len = len(close.debug)
    garbage = _record(gp.GRPC_CLOSE, 0)
    garbage.debug = b"\xff\xfe\x01O1"
    garbage.debug_len = 5
    raw = bytes(wait)  # records also arrive as bytes
    events = gp.grpc_events(
        [goaway, gp.decode_record(raw), ping, close, garbage, _record(99, 0)], clock
    )
    assert [e.attrs["type"] for e in events] == [
        "goaway",
        "flow_control_wait",
        "ping",
        "keepalive_timeout",
        "transport_close",
    ]
    g, w, p, k, t = events
    assert g.attrs == {
        "conn": "0xc000",
        "side": "client",
        "direction": "received",
        "type": "goaway",
        "code": 11,
        "code_name": "ENHANCE_YOUR_CALM",
        "debug_data": "too_many_pings",
        "last_stream_id": 1,
    }
    assert g.start_ns == g.end_ns == clock.to_wall(5_000)
    assert (g.kind, g.pid, g.tid, g.goid, g.source) == ("grpc", 7, 8, 9, "ebpf")
    assert w.duration_ns == 2_000_000
    assert (w.attrs["stream_id"], w.attrs["bytes"], w.attrs["stream_window"]) == (3, 16393, 65535)
    assert (p.attrs["ack"], p.attrs["purpose"], p.attrs["side"], p.attrs["direction"]) == (
        True,
        "bdp",
        "server",
        "sent",
    )
    assert k.attrs["reason"] == "keepalive ping not acked within timeout"
    assert t.attrs["reason"] == ""  # not text: the error did not start with a string


def test_goaway_without_offsets_has_no_code() -> None:
    (e,) = gp.grpc_events([_record(gp.GRPC_GOAWAY, 0, value=0)], MonotonicClock())
    assert e.attrs["type"] == "goaway" and "code" not in e.attrs


def _ev(typ: str, pid: int = 1, start: int = 0, end: int | None = None, **attrs: object) -> Event:
    return Event("grpc", pid, 0, 0, start, start if end is None else end, {"type": typ, **attrs})


def test_metrics_histogram_goaways_by_code_and_pings_per_connection() -> None:
    events = [
        _ev("flow_control_wait", start=0, end=3_000_000, side="client"),
        _ev("flow_control_wait", start=0, end=40_000_000, side="client"),
        _ev("flow_control_wait", pid=2, start=0, end=700_000_000, side="server"),
        _ev("goaway", code_name="ENHANCE_YOUR_CALM", direction="received"),
        _ev("goaway", code_name="ENHANCE_YOUR_CALM", direction="received"),
        _ev("goaway", code_name="NO_ERROR", direction="sent"),
        _ev("ping", conn="0xa", direction="sent", ack=False),
        _ev("ping", conn="0xa", direction="sent", ack=False),
        _ev("ping", conn="0xb", direction="received", ack=True),
        Event("park", 1, 0, 0, 0, 5, {}),
    ]
    req = gp.grpc_metrics(events, time_ns=123)
    assert isinstance(req, ExportMetricsServiceRequest)
    req = ExportMetricsServiceRequest.FromString(req.SerializeToString())
    by_pid = {
        rm.resource.attributes[0].value.int_value: {m.name: m for m in rm.scope_metrics[0].metrics}
        for rm in req.resource_metrics
    }
    assert set(by_pid) == {1, 2}
    h = by_pid[1]["goblock.grpc.flow_control.wait"].histogram
    (dp,) = h.data_points
    assert (dp.count, dp.sum, dp.min, dp.max) == (2, 43.0, 3.0, 40.0)
    assert sum(dp.bucket_counts) == 2 and len(dp.bucket_counts) == len(dp.explicit_bounds) + 1
    assert dp.bucket_counts[list(gp.WAIT_BOUNDS_MS).index(5.0)] == 1  # 3 ms: (2.5, 5]
    goaways = {
        tuple(a.value.string_value for a in p.attributes): p.as_int
        for p in by_pid[1]["goblock.grpc.goaways"].sum.data_points
    }
    assert goaways == {("ENHANCE_YOUR_CALM", "received"): 2, ("NO_ERROR", "sent"): 1}
    pings = {
        (p.attributes[0].value.string_value, p.attributes[2].value.bool_value): p.as_int
        for p in by_pid[1]["goblock.grpc.pings"].sum.data_points
    }
    assert pings == {("0xa", False): 2, ("0xb", True): 1}
    assert "goblock.grpc.goaways" not in by_pid[2]
    assert gp.grpc_metrics([]).resource_metrics == []


def test_probes_avoid_out_of_line_placements_on_amd64() -> None:
    """Entries on the stack-check `jbe`, write's end at the quota wakeup: no RET probes
    (each RET hit is two traps, on every send); see GRPC.md "Cheap placements"."""
    exe = str(build_demo())
    plan = gp.plan_for(exe)
    progs = [p for _f, p, _a in plan.points["flow_control"]]
    assert sorted(progs) == sorted(
        ["grpc_client_write", "grpc_server_write", "grpc_write_wake", "grpc_write_wake"]
    )
    from otel_goblock.golang import open_go_binary

    binary = open_go_binary(exe)
    for fam, points in plan.points.items():
        for func, prog, addr in points:
            if prog == "grpc_write_wake":
                assert addr in gp.quota_wake_points(binary, func)
            else:
                assert addr == stack_check_branch(binary, func), (fam, func)
                assert addr != binary.entry_probe(func).vaddr


@pytest.mark.ebpf
def test_grpc_source_compiles_in_one_module_with_every_other_source() -> None:
    """The receiver loads every concern as ONE BCC module: names must not clash."""
    from otel_goblock.receivers.ebpf.btf import task_fsbase_offset
    from otel_goblock.receivers.ebpf.program import ProgramOptions, import_bcc, source_text

    text, cflags = source_text(ProgramOptions(fsbase_offset=task_fsbase_offset()))
    text += "\n" + (BPF / "goruntime.bpf.c").read_text() + "\n" + SRC
    b = import_bcc().BPF(text=text, cflags=cflags)
    try:
        assert b["grpc_offsets"].Leaf.threshold_ns is not None
        assert b["go_offsets"] is not None
    finally:
        b.cleanup()


def test_go127_build_of_the_demo_gets_the_same_plan_from_dwarf() -> None:
    """Go 1.27 is newer than any table: its plan must come from DWARF and disassembly."""
    go127 = build_demo().parent / "go1.27" / "demo-service"
    if not go127.exists():
        pytest.skip("build/go1.27/demo-service not built (scripts/build_demo.sh --go127)")
    new, cur = gp.plan_for(str(go127)), gp.plan_for(str(build_demo()))
    assert new.degraded == []
    assert new.offsets == cur.offsets
    assert {f: [p for _fn, p, _a in pts] for f, pts in new.points.items()} == {
        f: [p for _fn, p, _a in pts] for f, pts in cur.points.items()
    }
