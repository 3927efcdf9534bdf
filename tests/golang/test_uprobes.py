"""The computed file offsets are where the kernel's uprobes fire.

Registers plain tracefs uprobes (no BPF program) at `path:file_offset` for a
function entry and each of its RET instructions, runs the fixture, and reads the
hit counts from uprobe_profile. main.worker runs exactly 4 times in the basic
fixture, so entry hits and RET hits must both be 4 - with .symtab and stripped.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from otel_goblock.golang import GoBinary

from .conftest import build

TRACEFS = Path("/sys/kernel/tracing")
pytestmark = pytest.mark.ebpf


def _write(path: Path, text: str) -> None:
    # O_APPEND without O_TRUNC: truncating uprobe_events would delete every other
    # probe on this machine. (Python's "a" mode seeks, which tracefs refuses.)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def _hits(group: str) -> dict[str, int]:
    """uprobe_profile lines are '<path> <event> <hits>' (event without its group)."""
    out = {}
    for line in (TRACEFS / "uprobe_profile").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].startswith(f"{group}_"):
            out[parts[1].removeprefix(f"{group}_")] = int(parts[2])
    return out


@pytest.mark.parametrize("stripped", [False, True], ids=["dwarf", "stripped"])
def test_entry_and_ret_offsets_fire(toolchain: str, stripped: bool) -> None:
    if not (TRACEFS / "uprobe_events").exists():
        pytest.skip("tracefs uprobe_events not available")
    exe = build(toolchain, "basic", stripped=stripped).path
    gb = GoBinary(str(exe))
    entry = gb.entry_probe("main.worker")
    rets = gb.ret_probes("main.worker")
    assert rets
    group = f"gbgolang{os.getpid()}{'s' if stripped else 'd'}{toolchain.replace('.', '')}"
    offsets = {"entry": entry.file_offset} | {f"ret{i}": r.file_offset for i, r in enumerate(rets)}
    events = {f"{group}_{k}": v for k, v in offsets.items()}
    instance = TRACEFS / "instances" / group
    registered: list[str] = []
    try:
        for name, off in events.items():
            _write(TRACEFS / "uprobe_events", f"p:{group}/{name} {exe}:{off:#x}")
            registered.append(name)
        instance.mkdir()
        for name in events:
            (instance / "events" / group / name / "enable").write_text("1")
        r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        hits = _hits(group)
    finally:
        if instance.exists():
            for name in registered:
                p = instance / "events" / group / name / "enable"
                if p.exists():
                    p.write_text("0")
            instance.rmdir()
        for name in registered:
            _write(TRACEFS / "uprobe_events", f"-:{group}/{name}")
    assert hits["entry"] == 4
    assert sum(v for k, v in hits.items() if k.startswith("ret")) == 4
    assert group not in (TRACEFS / "uprobe_events").read_text()


def test_bcc_attach_uprobe_addr_takes_the_vaddr(toolchain: str) -> None:
    """BCC's attach_uprobe(addr=) wants the virtual address (it converts to a file
    offset itself): ProbePoint.vaddr is the value to pass, on a stripped binary."""
    from otel_goblock.receivers.ebpf.program import import_bcc

    bcc = import_bcc()
    exe = str(build(toolchain, "basic", stripped=True).path)
    gb = GoBinary(exe)
    b = bcc.BPF(
        text=b"""
BPF_ARRAY(hits, u64, 2);
static void count(int k) { u64 *v = hits.lookup(&k); if (v) __sync_fetch_and_add(v, 1); }
int on_entry(struct pt_regs *ctx) { count(0); return 0; }
int on_ret(struct pt_regs *ctx) { count(1); return 0; }
"""
    )
    try:
        b.attach_uprobe(
            name=exe.encode(), addr=gb.entry_probe("main.worker").vaddr, fn_name=b"on_entry"
        )
        for p in gb.ret_probes("main.worker"):
            b.attach_uprobe(name=exe.encode(), addr=p.vaddr, fn_name=b"on_ret")
        subprocess.run([exe], check=True, capture_output=True, timeout=60)
        hits = {k.value: v.value for k, v in b["hits"].items()}
    finally:
        b.cleanup()
    assert hits == {0: 4, 1: 4}
