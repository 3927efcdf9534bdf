"""The command line as a user meets it: exit codes and the words of its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(__file__).parent / "testdata"


def cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_goblock.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_accepts_the_example_config() -> None:
    r = cli("validate", "--config", "collector-config.yaml")
    assert r.returncode == 0, r.stderr
    assert (
        "valid; traces: otlp,ebpf -> memory_limiter -> goblock -> batch -> otlp_grpc,file"
        in r.stdout
    )
    assert len(r.stdout.strip().splitlines()) == 1


def test_validate_lists_every_problem_and_exits_2() -> None:
    r = cli("validate", "--config", str(TESTDATA / "bad_undefined_component.yaml"))
    assert r.returncode == 2
    assert "3 problem(s)" in r.stderr
    assert "receiver 'nope' is not configured" in r.stderr
    assert "processor 'memory_limiter' is not configured" in r.stderr
    assert "exporter 'nope2' is not configured" in r.stderr


def test_run_refuses_a_bad_config_with_exit_2() -> None:
    r = cli("run", "--config", str(TESTDATA / "bad_duration.yaml"))
    assert r.returncode == 2
    assert "processors.batch.timeout: expected a duration" in r.stderr


def test_missing_config_file_names_the_fix(tmp_path: Path) -> None:
    r = cli("validate", "--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "no such config file" in r.stderr and "--config" in r.stderr


def test_components_lists_one_line_per_type() -> None:
    r = cli("components")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    for kind, type_ in [
        ("receiver", "otlp"),
        ("processor", "batch"),
        ("processor", "memory_limiter"),
        ("exporter", "otlp_grpc"),
        ("exporter", "otlp_http"),
        ("exporter", "file"),
        ("extension", "health_check"),
    ]:
        assert any(line.split()[:2] == [kind, type_] for line in lines), (kind, type_)


def test_run_fails_fast_when_a_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
            f"        endpoint: 127.0.0.1:{port}\n"
            f"exporters:\n  file:\n    path: {tmp_path}/o.jsonl\n"
            "service:\n  telemetry:\n    metrics:\n      level: none\n"
            "  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n"
        )
        r = cli("run", "--config", str(cfg))
    assert r.returncode == 1
    assert "could not start" in r.stderr


def test_a_second_config_overlays_the_first(tmp_path: Path) -> None:
    """As the collector's repeated --config: mappings merge, lists are replaced, so an
    overlay adds an exporter to a pipeline without a copy of the whole file."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(
        "exporters:\n  debug: {verbosity: basic}\n"
        "service:\n  pipelines:\n    traces:\n      exporters: [file, debug]\n"
    )
    r = cli("validate", "--config", "collector-config.yaml", "--config", str(overlay))
    assert r.returncode == 0, r.stderr
    assert "traces: otlp,ebpf -> memory_limiter -> goblock -> batch -> file,debug;" in r.stdout
    assert f"collector-config.yaml + {overlay}: valid" in r.stdout
    r = cli("validate", "--config", "collector-config.yaml", "--config", str(tmp_path / "no.yaml"))
    assert r.returncode == 2 and "no.yaml: no such config file" in r.stderr


def test_the_demo_jaeger_overlay_validates() -> None:
    r = cli(
        "validate",
        "--config",
        "examples/demo-config.yaml",
        "--config",
        "examples/demo-jaeger.yaml",
        env={"DEMO_PID": "1"},
    )
    assert r.returncode == 0, r.stderr
    assert "exporters" not in r.stderr
    assert "-> file,debug,otlp_grpc/jaeger" in r.stdout
