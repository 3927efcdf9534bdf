"""Cost per grpc probe hit, as the target pays it (uprobe trap + BPF program).

The demo's `/grpc/flow?ms=0&kib=K` streams K KiB in 16 KiB messages as fast as the
in-process server reads them: every message is one `write` entry + RET on the sender and
about two WINDOW_UPDATEs received — thousands of hits in one request, little else.
The same request runs with the probes off and on, alternating `--rounds` times; the
demo's CPU time (utime + stime from /proc) per request is compared:

    µs per hit = (median CPU on - median CPU off) / hits per request

    .venv/bin/python benchmarks/grpc_probe_cost.py [--kib 32768] [--rounds 5]

On a busy shared machine CPU time is noisy: medians of alternating runs, and the spread
is printed beside them. Needs root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "grpc"))
from grpc_harness import Demo, build_demo, compile_grpc_module  # noqa: E402
from otel_goblock.receivers.ebpf.grpcprobes import ALL_FAMILIES, GrpcProbes  # noqa: E402


def cpu_s(pid: int) -> float:
    """CPU seconds of the process's live threads, ns-precise (/proc/.../schedstat: the
    tick-based utime/stime of /proc/pid/stat are 10 ms grains)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # the thread exited
    return total / 1e9


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kib", type=int, default=32768)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--families", default=",".join(sorted(ALL_FAMILIES)))
    args = ap.parse_args()
    exe = build_demo()
    demo = Demo(exe, None)
    b = compile_grpc_module()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            b.ring_buffer_poll(100)
            b.ring_buffer_consume()
            b.records.clear()

    threading.Thread(target=drain, daemon=True).start()
    path = f"/grpc/flow?ms=0&kib={args.kib}"
    demo.get(path)  # warm-up
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    hits: list[int] = []
    try:
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                probes = GrpcProbes(b, args.families.split(","), flow_threshold_ns=1_000_000)
                if mode == "on":
                    probes.attach(demo.pid, str(exe))
                h0, c0 = probes.hits(), cpu_s(demo.pid)
                demo.get(path, timeout=300)
                c1, h1 = cpu_s(demo.pid), probes.hits()
                probes.close()
                cpu[mode].append(c1 - c0)
                if mode == "on":
                    hits.append(sum(h1.values()) - sum(h0.values()))
                    by = {k: h1[k] - h0[k] for k in h1 if h1[k] != h0[k]}
    finally:
        stop.set()
        demo.stop()
        b.cleanup()
    off, on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    n = statistics.median(hits)
    print(f"{path}: {args.kib // 16} messages per request, {args.rounds} rounds, {args.families}")
    print(f"hits per request (on): {n:.0f}  by probe: {by}")
    print(
        f"demo CPU per request: off {off * 1e3:.1f} ms (spread {min(cpu['off']) * 1e3:.1f}-"
        f"{max(cpu['off']) * 1e3:.1f}), on {on * 1e3:.1f} ms (spread "
        f"{min(cpu['on']) * 1e3:.1f}-{max(cpu['on']) * 1e3:.1f})"
    )
    print(f"cost per hit: {(on - off) * 1e6 / n:.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
