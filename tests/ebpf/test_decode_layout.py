"""decode.py's record layouts against bpf/goblock.h as BCC compiles it."""

from __future__ import annotations

import ctypes
import re

import pytest
from otel_goblock.receivers.ebpf import decode, program

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
    for idx, name in program.LOST_NAMES.items():
        assert defines[f"LOST_{name.upper()}"] == idx
    assert defines["GOBLOCK_HIST_SLOTS"] == 32
