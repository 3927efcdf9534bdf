"""`otel-goblock` command line: validate, run, components, doctor."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from otel_goblock import __version__
from otel_goblock.component import default_registry
from otel_goblock.config import ConfigError
from otel_goblock.config.loader import load_files
from otel_goblock.logs import setup_logging
from otel_goblock.pacing import Pacer
from otel_goblock.service import Service
from otel_goblock.service_config import ServiceConfig, build_config

EXIT_CONFIG = 2
log = logging.getLogger("otel_goblock")


def _load(paths: list[str]) -> ServiceConfig:
    return build_config(load_files(paths), default_registry())


def _names(paths: list[str]) -> str:
    return " + ".join(paths)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ConfigError as e:
        print(f"{_names(args.config)}: {len(e.problems)} problem(s):", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{_names(args.config)}: valid; {cfg.summary()}")
    return 0


def cmd_components(_: argparse.Namespace) -> int:
    for f in default_registry().factories():
        alias = f" (alias: {', '.join(f.aliases)})" if f.aliases else ""
        signals = ",".join(sorted(f.signals)) if f.kind != "extension" else "-"
        print(f"{f.kind:<10} {f.type + alias:<28} {signals:<15} {f.description}")
    return 0


def cmd_doctor(_: argparse.Namespace) -> int:
    try:
        from otel_goblock.doctor import run_doctor
    except ModuleNotFoundError as e:
        print(f"doctor unavailable: {e}", file=sys.stderr)
        return 1
    ok, lines = run_doctor()
    for line in lines:
        print(line)
    return 0 if ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from otel_goblock.report import FileSource, JaegerSource, render

    if (args.file is None) == (args.jaeger is None):
        print("report: give a file or --jaeger URL (one of them)", file=sys.stderr)
        return EXIT_CONFIG
    source = (
        FileSource(Path(args.file))
        if args.file is not None
        else JaegerSource(
            args.jaeger, services=args.service or [], limit=args.limit, lookback=args.lookback
        )
    )
    return render(source, fmt=args.format, top=args.top)


async def _run(cfg: ServiceConfig) -> int:
    service = Service(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except Exception as e:  # a component refused to start: say which and why
        log.error("could not start: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1
    assert service.fatal is not None
    # Everything built so far (modules, config, servers) lives as long as the process:
    # keep it out of the cyclic collector, and collect less often. With millions of
    # long-lived objects a full collection paused the join for 0.2-0.8 s
    # (processors/goblock README, benchmarks/goblock_join.py).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    pacing = cfg.service.cpu_pacing
    pacer = Pacer(float(pacing.run), float(pacing.rest)) if pacing.enabled else None
    if pacer is not None:
        pacer.start()
        log.info("cpu pacing: a %s rest after each %s of CPU", pacing.rest, pacing.run)
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({stopper, service.fatal}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if service.fatal in done:
        code = 1
    else:
        log.info("received a stop signal, shutting down")
    stopper.cancel()
    if pacer is not None:  # the shutdown drains at full speed
        pacer.stop()
        log.info("cpu pacing: %d rests", pacer.rests)
    await service.shutdown()
    return code


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ConfigError as e:
        setup_logging(args.log_level or "info")
        for p in e.problems:
            log.error("invalid configuration: %s", p, extra={"config": _names(args.config)})
        return EXIT_CONFIG
    level = args.log_level or cfg.service.telemetry.logs.level
    setup_logging("warning" if level == "warn" else level)
    if args.shutdown_timeout is not None:
        from otel_goblock.config import Duration

        cfg.service.shutdown_timeout = Duration.parse(args.shutdown_timeout)
    log.info("starting otel-goblock", extra={"version": __version__, "config": _names(args.config)})
    return asyncio.run(_run(cfg))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="otel-goblock",
        description="OpenTelemetry pipeline that says where a Go span's wall time went.",
    )
    parser.add_argument("--version", action="version", version=f"otel-goblock {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    default_cfg = "collector-config.yaml"

    p = sub.add_parser("validate", help="check a config; exit 2 listing every problem")
    p.add_argument(
        "--config",
        action="append",
        help=f"config file (default {default_cfg}); repeat to merge overlays, later files win",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run the pipelines until SIGINT/SIGTERM")
    p.add_argument(
        "--config",
        action="append",
        help=f"config file (default {default_cfg}); repeat to merge overlays, later files win",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--shutdown-timeout", help='how long draining may take on stop (default "30s")')
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("components", help="list the component types")
    p.set_defaults(func=cmd_components)

    p = sub.add_parser(
        "report", help="where the time went: per span name, and the slowest spans as a waterfall"
    )
    p.add_argument("file", nargs="?", help="a file written by the file exporter (OTLP/JSON lines)")
    p.add_argument(
        "--jaeger",
        metavar="URL",
        help="read Jaeger's query API instead, e.g. http://127.0.0.1:16686",
    )
    p.add_argument(
        "--service",
        action="append",
        help="with --jaeger: only this service (repeatable; default every service)",
    )
    p.add_argument("--limit", type=int, default=200, help="with --jaeger: traces per service")
    p.add_argument("--lookback", default="1h", help="with --jaeger: how far back (e.g. 1h, 30m)")
    p.add_argument("--top", type=int, default=3, help="slowest enriched spans to draw (0: none)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("doctor", help="check that this host can run the eBPF receiver")
    p.set_defaults(func=cmd_doctor)

    args = parser.parse_args(argv)
    if hasattr(args, "config"):
        args.config = args.config or [default_cfg]
        for path in args.config:
            if not Path(path).exists():
                print(
                    f"{path}: no such config file (pass --config PATH; an example is "
                    "collector-config.yaml at the repository root)",
                    file=sys.stderr,
                )
                return EXIT_CONFIG
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
