"""`python -m otel_goblock.golang BINARY [FUNC ...] [--struct TYPE ...]`: what the
probes would see in a Go binary, with the time each part took to parse.

A debugging aid for the eBPF receiver (why is a probe missing? which offsets
came from where?) and the parse-time benchmark of this package.
"""

from __future__ import annotations

import argparse
import sys
import time

from .binary import GoBinary
from .elfimage import GoBinaryError

DEFAULT_FUNCS = (
    "runtime.gopark",
    "runtime.ready",
    "runtime.newproc1",
    "runtime.goexit1",
    "runtime.gcAssistAlloc",
    "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End",
    "google.golang.org/grpc/internal/transport.(*http2Client).handleGoAway",
)
DEFAULT_STRUCTS = (
    "runtime.g",
    "runtime.m",
    "go.opentelemetry.io/otel/sdk/trace.recordingSpan",
    "go.opentelemetry.io/otel/trace.SpanContext",
    "golang.org/x/net/http2.GoAwayFrame",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m otel_goblock.golang", description=__doc__)
    ap.add_argument("binary")
    ap.add_argument("funcs", nargs="*", help="functions to resolve (default: probe points)")
    ap.add_argument("--struct", action="append", default=[], help="struct type to lay out")
    ap.add_argument("--deps", action="store_true", help="list module dependencies")
    args = ap.parse_intermixed_args(argv)
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        gb = GoBinary(args.binary)
        t_open = time.perf_counter()
        layout = gb.runtime_layout
        t_layout = time.perf_counter()
        structs = {name: gb.struct(name) for name in (args.struct or DEFAULT_STRUCTS)}
        t_structs = time.perf_counter()
        funcs = {}
        for name in args.funcs or DEFAULT_FUNCS:
            f = gb.symbols.function(name)
            funcs[name] = (f, gb.ret_probes(name) if f is not None else [])
        t_funcs = time.perf_counter()
        cpu = time.process_time() - c0
    except GoBinaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    bi = gb.buildinfo
    print(f"{gb.path}: {bi.go_version} {gb.arch} build id {gb.build_id}")
    print(f"main module {bi.path} ({len(bi.deps)} deps); symbols from {gb.symbols.source}")
    if args.deps:
        for d in bi.deps:
            print(f"  dep {d.path} {d.version}" + (f" => {d.replace.path}" if d.replace else ""))
    print(layout.log_line(gb.path))
    print(f"  offsets: {layout.offsets}")
    print(f"  wait reasons: {len(gb.wait_reasons.names)} from {gb.wait_reasons.source}")
    for name, s in structs.items():
        if s is None:
            print(f"  struct {name}: not in DWARF")
        else:
            fields = ", ".join(f"{f.name}@{f.offset}" for f in s.fields[:12])
            more = " ..." if len(s.fields) > 12 else ""
            print(f"  struct {name} size {s.size}: {fields}{more}")
    for name, (f, rets) in funcs.items():
        if f is None:
            print(f"  func {name}: absent")
        else:
            print(
                f"  func {name}: vaddr {f.entry:#x} offset {f.file_offset:#x} size {f.size}"
                f" rets {[hex(r.vaddr) for r in rets]}"
            )
    print(
        f"timing: open (buildinfo+symbols) {1000 * (t_open - t0):.1f} ms, runtime layout "
        f"(DWARF+wait reasons) {1000 * (t_layout - t_open):.1f} ms, structs "
        f"{1000 * (t_structs - t_layout):.1f} ms, funcs+RETs {1000 * (t_funcs - t_structs):.1f} ms,"
        f" total {1000 * (t_funcs - t0):.1f} ms wall, {1000 * cpu:.1f} ms CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
