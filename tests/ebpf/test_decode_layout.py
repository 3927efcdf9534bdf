"""decode.py's record layouts against bpf/goblock.h as BCC compiles it."""

from __future__ import annotations

import ctypes
import re
import threading

import pytest
from otel_goblock.receivers.ebpf import decode, metrics, program

pytestmark = pytest.mark.ebpf


@pytest.fixture(scope="module")
def compiled():
    bcc = program.import_bcc()
    hdr = (program.BPF_DIR / "goblock.h").read_text()
    # one array per record type: BCC then exposes the C layout as ctypes Leaf classes
    text = (
        hdr
        + "\n"
        + "\n".join(
            f"BPF_ARRAY(layout_{lay.c_name}, struct {lay.c_name}, 1);" for lay in decode.LAYOUTS
        )
        + "\nint goblock_layout(void *ctx) { return 0; }\n"
    )
    b = bcc.BPF(text=text.encode(), cflags=[f"-I{program.BPF_DIR}"])
    yield b
    b.cleanup()


@pytest.mark.parametrize("layout", decode.LAYOUTS, ids=lambda lay: lay.c_name)
def test_python_layout_matches_the_c_struct(compiled, layout):
    leaf = compiled[f"layout_{layout.c_name}".encode()].Leaf
    assert ctypes.sizeof(leaf) == layout.size
    c_offsets = {
        name: getattr(leaf, name).offset for name, *_ in leaf._fields_ if not name.startswith("_")
    }
    assert c_offsets == layout.offsets()


def test_python_constants_match_the_header():
    hdr = (program.BPF_DIR / "goblock.h").read_text()
    defines = {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^#define (\w+) (\d+)", hdr, re.MULTILINE)
    }
    assert defines["SCHED_OFFCPU"] == decode.SCHED_OFFCPU
    assert defines["SCHED_RUNQ"] == decode.SCHED_RUNQ
    assert {
        defines["OFFCPU_BLOCKED"]: "blocked",
        defines["OFFCPU_PREEMPTED"]: "preempted",
    } == decode.OFFCPU_STATES
    for num, name in decode.TCP_TYPES.items():
        key = "TCP_EV_" + name.upper().replace("RESET_SENT", "RESET_SENT")
        assert defines[key] == num
    assert (defines["PROC_EXEC"], defines["PROC_EXIT"]) == (decode.PROC_EXEC, decode.PROC_EXIT)
    assert defines["CFG_SYSCALL_THRESHOLD_NS"] == program.CFG_SYSCALL_THRESHOLD_NS
    assert defines["CFG_OFFCPU_THRESHOLD_NS"] == program.CFG_OFFCPU_THRESHOLD_NS
    assert defines["CFG_TCP_PROBE_INTERVAL_NS"] == program.CFG_TCP_PROBE_INTERVAL_NS
    assert defines["CFG_NETPOLL_PEERS"] == program.CFG_NETPOLL_PEERS
    assert defines["CFG_TCP_STATES_ALL"] == program.CFG_TCP_STATES_ALL
    assert defines["CFG_TCP_PROBE_MIN_AGE_NS"] == program.CFG_TCP_PROBE_MIN_AGE_NS
    assert defines["TCP_STATE_SLOTS"] == metrics.TCP_STATE_SLOTS
    for idx, name in program.LOST_NAMES.items():
        assert defines[f"LOST_{name.upper()}"] == idx
    assert defines["GOBLOCK_HIST_SLOTS"] == metrics.HIST_SLOTS == 32
    assert defines["GOBLOCK_SYSCALL_NR_MAX"] == metrics.SYSCALL_NR_MAX
    assert defines["SCHED_HIST_SERIES"] == metrics.SCHED_HIST_SERIES
    assert defines["SCHED_HIST_RUNQ"] == metrics.SCHED_HIST_RUNQ
    assert defines["SCHED_HIST_OFFCPU_BLOCKED"] == metrics.SCHED_HIST_OFFCPU_BLOCKED
    assert defines["SCHED_HIST_OFFCPU_PREEMPTED"] == metrics.SCHED_HIST_OFFCPU_PREEMPTED


# an invalid syscall number: raw_syscalls:sys_enter still fires for it (with its
# arguments), the kernel then returns ENOSYS
_PROBE_NR = 0x7A11


def _slot_reference(ns: int) -> int:
    """floor(log2(µs)), 0 below 2 µs, at most 31: the histogram's documented slots."""
    us = ns // 1000
    return min(us.bit_length() - 1, 31) if us > 1 else 0


def test_hist_slot_in_the_kernel_is_floor_log2_of_microseconds():
    bcc = program.import_bcc()
    hdr = (program.BPF_DIR / "goblock.h").read_text()
    text = (
        hdr
        + f"""
BPF_ARRAY(slots, u32, 256);
TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{{
    if (args->id != {_PROBE_NR} || (u32)bpf_get_current_pid_tgid() != {threading.get_native_id()})
        return 0;
    u32 i = args->args[1] & 255;
    u32 slot = hist_slot(args->args[0]);
    slots.update(&i, &slot);
    return 0;
}}
"""
    )
    values = [0, 1, 999, 1000, 1999, 2000, 3999, 4000, 65_535_999, 65_536_000]
    values += [1000 << k for k in range(40)] + [(1000 << k) - 1 for k in range(1, 40)]
    values += [2**64 - 1, 2**63]
    assert len(values) <= 256
    b = bcc.BPF(text=text.encode(), cflags=[f"-I{program.BPF_DIR}"])
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.argtypes = [ctypes.c_long, ctypes.c_uint64, ctypes.c_uint64]
        for i, ns in enumerate(values):
            assert libc.syscall(_PROBE_NR, ns, i) == -1
        slots = b[b"slots"]
        got = [slots[ctypes.c_int(i)].value for i in range(len(values))]
    finally:
        b.cleanup()
    assert got == [_slot_reference(ns) for ns in values]
