"""Parts that need no BPF: clock, config, target matching, fd targets, metrics shape."""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from pathlib import Path

import pytest
import yaml
from otel_goblock.receivers.ebpf import decode as records
from otel_goblock.receivers.ebpf import metrics
from otel_goblock.receivers.ebpf.config import Config
from otel_goblock.receivers.ebpf.fdtarget import KERNEL_IDENTITY, S_IFSOCK, FdResolver
from otel_goblock.receivers.ebpf.gobinary import go_version, goid_offset
from otel_goblock.receivers.ebpf.targets import Spec

from otel_goblock.clock import MonotonicClock, sample_offset
from otel_goblock.config import ConfigError, decode

TESTDATA = Path(__file__).resolve().parents[2] / "receivers" / "ebpf" / "testdata"


def test_clock_offset_maps_monotonic_to_wall_time():
    c = MonotonicClock()
    wall = c.to_wall(time.clock_gettime_ns(time.CLOCK_MONOTONIC))
    assert abs(wall - time.time_ns()) < 5_000_000


def test_clock_resamples_when_older_than_max_age(monkeypatch):
    c = MonotonicClock(max_age_s=0.01)
    seen = []
    monkeypatch.setattr("otel_goblock.clock.sample_offset", lambda tries=5: seen.append(1) or 42)
    time.sleep(0.02)
    assert c.offset_ns == 42 and seen


def test_clock_refuses_an_offset_older_than_30s():
    with pytest.raises(ValueError, match="30"):
        MonotonicClock(max_age_s=60)


def test_sample_offset_is_stable():
    a, b = sample_offset(), sample_offset()
    assert abs(a - b) < 1_000_000


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_testdata(path):
    data = yaml.safe_load(path.read_text())
    if path.stem.startswith("bad_"):
        with pytest.raises(ConfigError) as e:
            decode(Config, data)
        expected = data.get("_expect") if isinstance(data, dict) else None
        assert expected is None or expected in str(e.value)
    else:
        cfg = decode(Config, data)
        assert cfg.validate() == []


def test_config_defaults():
    cfg = decode(Config, {"targets": [{"pid": 1}]})
    assert cfg.syscall_threshold == pytest.approx(0.001)
    assert cfg.offcpu_threshold == pytest.approx(0.001)
    assert cfg.required and cfg.syscalls and cfg.sched and cfg.tcp


def test_config_rejects_a_target_naming_two_ways():
    with pytest.raises(ConfigError, match="exactly one of pid, exe, comm"):
        decode(Config, {"targets": [{"pid": 1, "comm": "x"}]})


def test_spec_matching():
    assert Spec(pid=5).matches(5, "x", "/bin/x")
    assert not Spec(pid=5).matches(6, "x", "/bin/x")
    assert Spec(exe="/usr/bin/demo").matches(1, "demo", "/usr/bin/demo")
    assert Spec(exe="demo").matches(1, "demo", "/usr/bin/demo")
    assert Spec(comm=re.compile("^de")).matches(1, "demo", "/x")
    assert not Spec(comm=re.compile("^x")).matches(1, "demo", "/x")


def test_fd_target_resolves_tcp_sockets_files_and_pipes(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname())
    acc, _ = srv.accept()
    f = open(tmp_path / "data", "w")  # noqa: SIM115 - kept open for the lookup
    r, w = os.pipe()
    try:
        res = FdResolver()
        a = cli.getsockname()
        b = srv.getsockname()
        assert res.resolve(os.getpid(), cli.fileno()) == f"tcp {a[0]}:{a[1]}->{b[0]}:{b[1]}"
        assert res.resolve(os.getpid(), f.fileno()) == str(tmp_path / "data")
        assert re.fullmatch(r"pipe:\[\d+\]", res.resolve(os.getpid(), r))
        assert res.resolve(os.getpid(), 10_000) == ""
    finally:
        for s in (cli, acc, srv):
            s.close()
        f.close()
        os.close(r)
        os.close(w)


def test_fd_target_without_proc_fallback_names_only_what_bpf_identified():
    """With BPF's fd walk, a record without an identity is an fd the syscall closed:
    /proc would name whatever reuses the number now, so it is left unnamed."""
    r, w = os.pipe()
    try:
        assert FdResolver().resolve(os.getpid(), r) != ""  # /proc: the pipe open now
        res = FdResolver(proc_fallback=False)
        assert res.resolve(os.getpid(), r) == ""
        sockaddr = struct.pack(
            "<BBHHH16s16s", 1, socket.IPPROTO_TCP, socket.AF_INET, 40312, 5432,
            bytes([10, 0, 0, 1]), bytes([10, 0, 0, 5]),
        )  # fmt: skip
        mode = KERNEL_IDENTITY | S_IFSOCK
        want = "tcp 10.0.0.1:40312->10.0.0.5:5432"
        assert res.resolve(1, 7, mode, 99, sockaddr) == want
        res.new_batch()  # socket names outlive a batch: the same bytes read the same
        assert res.resolve(2, 9, mode, 99, sockaddr) == want
    finally:
        os.close(r)
        os.close(w)


def test_tcp_events_in_a_batch_equal_one_by_one():
    rows = []
    for typ in range(1, 9):  # every TCP_EV_* and an unknown one
        for fam, sa, da in (
            (socket.AF_INET, bytes([127, 0, 0, 1]) + bytes(12), bytes([10, 1, 2, 3]) + bytes(12)),
            (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "::ffff:1.2.3.4"),
             socket.inet_pton(socket.AF_INET6, "fe80::1")),
        ):  # fmt: skip
            rows.append((5, 1, 10, 11, 30, 0, 64, 10, 1, 7, fam, 80, 443, typ, 0, sa, da))
    assert records.tcp_events(rows, 100) == [records.tcp_event(r, 100) for r in rows]


def test_go_version_and_goid_offset_of_a_go_binary():
    go = "/usr/local/go/bin/go"
    if not os.path.exists(go):
        pytest.skip("no Go toolchain")
    assert go_version(go).startswith("go1.")
    assert goid_offset(go) in (152, 160)
    assert goid_offset("/bin/sh") == 0


def test_histogram_buckets_follow_log2_microsecond_slots():
    req = metrics.build(
        syscall_hist={(0, 15): 3, (0, 0): 2},
        syscall_sum={0: 150_000_000},
        sched_hist={(2, 0, 3): 1, (1, 1, 10): 4},
        tcp_counts={(2, bytes([127, 0, 0, 1]) + bytes(12), 2, 5432): 7},
        syscall_name=lambda nr: "read",
        start_ns=1,
        now_ns=2,
        resource_attrs={"service.name": "t"},
    )
    ms = {m.name: m for m in req.resource_metrics[0].scope_metrics[0].metrics}
    dp = ms["goblock.syscall.duration"].histogram.data_points[0]
    assert dp.count == 5 and dp.sum == pytest.approx(0.15)
    assert dp.bucket_counts[15] == 3 and dp.bucket_counts[0] == 2
    assert dp.explicit_bounds[15] == pytest.approx(65.536e-3)
    assert "goblock.runqueue.latency" in ms and "goblock.offcpu.duration" in ms
    resets = ms["goblock.tcp.resets"].sum.data_points[0]
    attrs = {a.key: a.value for a in resets.attributes}
    assert resets.as_int == 7 and attrs["network.peer.address"].string_value == "127.0.0.1"
    assert attrs["direction"].string_value == "sent"


def test_dwarf_goid_offset_of_an_unstripped_go_binary(gbfx):
    from otel_goblock.receivers.ebpf.gobinary import dwarf_goid_offset

    assert dwarf_goid_offset(str(gbfx)) == goid_offset(str(gbfx)) == 152  # Go 1.26
    assert dwarf_goid_offset("/bin/sh") is None


def test_per_cpu_histogram_arrays_are_summed_over_cpus_and_keyed():
    # 3 entries x 2 CPUs, entry-major as BPF_MAP_LOOKUP_BATCH lays out per-CPU values
    assert metrics.sum_cpus([1, 2, 0, 0, 5, 7], 2) == [3, 0, 12]
    assert metrics.sum_cpus([4, 0, 9], 1) == [4, 0, 9]
    slots = metrics.HIST_SLOTS
    hist = [0] * (metrics.SYSCALL_NR_MAX * slots)
    hist[0 * slots + 15] = 3  # read, slot 15
    hist[75 * slots + 0] = 2  # fdatasync, slot 0
    sums = [0] * metrics.SYSCALL_NR_MAX
    sums[0], sums[75] = 150_000_000, 1_000
    h, s = metrics.syscall_aggregates(hist, sums)
    assert h == {(0, 15): 3, (75, 0): 2}
    assert s == {0: 150_000_000, 75: 1_000}
    sched = [0] * (metrics.SCHED_HIST_SERIES * slots)
    sched[metrics.SCHED_HIST_RUNQ * slots + 3] = 1
    sched[metrics.SCHED_HIST_OFFCPU_BLOCKED * slots + 10] = 4
    sched[metrics.SCHED_HIST_OFFCPU_PREEMPTED * slots + 31] = 6
    # (kind, sub, slot): runq (2, 0, slot), off-CPU (1, state, slot)
    assert metrics.sched_aggregates(sched) == {(2, 0, 3): 1, (1, 1, 10): 4, (1, 2, 31): 6}


def test_tcp_state_counts_become_a_metric_by_old_and_new_state():
    counts = [0] * (metrics.TCP_STATE_SLOTS * metrics.TCP_STATE_SLOTS)
    counts[7 * metrics.TCP_STATE_SLOTS + 2] = 5  # CLOSE → SYN_SENT
    counts[2 * metrics.TCP_STATE_SLOTS + 7] = 1  # SYN_SENT → CLOSE
    states = metrics.state_aggregates(counts)
    assert states == {(7, 2): 5, (2, 7): 1}
    req = metrics.build(
        syscall_hist={},
        syscall_sum={},
        sched_hist={},
        tcp_counts={},
        tcp_states=states,
        syscall_name=lambda nr: "read",
        start_ns=1,
        now_ns=2,
        resource_attrs={"service.name": "t"},
    )
    (m,) = req.resource_metrics[0].scope_metrics[0].metrics
    assert m.name == "goblock.tcp.state_changes" and m.sum.is_monotonic
    got = {
        tuple(a.value.string_value for a in dp.attributes): dp.as_int for dp in m.sum.data_points
    }
    assert got == {("CLOSE", "SYN_SENT"): 5, ("SYN_SENT", "CLOSE"): 1}


def test_config_tcp_state_changes_is_validated():
    cfg = decode(Config, {"targets": [{"pid": 1}]})
    assert cfg.tcp_state_changes == "unusual"
    assert cfg.tcp_probe_min_age == pytest.approx(0.1)
    assert decode(Config, {"targets": [{"pid": 1}], "tcp_state_changes": "all"}).validate() == []
    with pytest.raises(ConfigError, match="tcp_state_changes: expected one of unusual, all"):
        decode(Config, {"targets": [{"pid": 1}], "tcp_state_changes": "some"})
