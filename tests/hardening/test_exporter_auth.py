"""Exporter authentication through an extension (collector `configauth`, client side):
`exporters.<otlp_grpc|otlp_http>.auth.authenticator: bearertokenauth/<name>` makes the
exporter ask that extension for its header on every request. Real pipelines: a sending
pipeline authenticates to a receiving pipeline whose otlp receiver requires the token."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from .common import Pipeline, file_spans, free_port, grpc_export, request
from .test_bearertokenauth import auth_config

TOKEN = "exporter-auth-T0KEN-hardening"


def receiving(grpc_port: int, http_port: int, out: Path, token_file: Path) -> dict[str, Any]:
    ext = {"filename": str(token_file)}
    return auth_config(grpc_port, http_port, out, ext, name="bearertokenauth/in")


def sending(
    port: int, sink_grpc: int, sink_http: int, right: dict[str, str], wrong: dict[str, str]
) -> dict[str, Any]:
    """Four exporters: otlp_grpc and otlp_http with the right token, and each again with a
    wrong one; one pipeline per exporter, all fed by the same receiver."""

    def grpc_exp(ext: str) -> dict[str, Any]:
        return {
            "endpoint": f"127.0.0.1:{sink_grpc}",
            "tls": {"insecure": True},
            "auth": {"authenticator": ext},
            # a static header of the same name must not win over the authenticator
            "headers": {"authorization": "Bearer static-header-loses"},
        }

    def http_exp(ext: str) -> dict[str, Any]:
        return {
            "endpoint": f"http://127.0.0.1:{sink_http}",
            "auth": {"authenticator": ext},
            "headers": {"Authorization": "Bearer static-header-loses"},
        }

    exporters = {
        "otlp_grpc": grpc_exp("bearertokenauth/right"),
        "otlp_http": http_exp("bearertokenauth/right"),
        "otlp_grpc/wrong": grpc_exp("bearertokenauth/wrong"),
        "otlp_http/wrong": http_exp("bearertokenauth/wrong"),
    }
    return {
        "extensions": {"bearertokenauth/right": right, "bearertokenauth/wrong": wrong},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": exporters,
        "service": {
            "extensions": ["bearertokenauth/right", "bearertokenauth/wrong"],
            "pipelines": {
                f"traces/{e.replace('/', '_')}": {"receivers": ["otlp"], "exporters": [e]}
                for e in exporters
            },
        },
    }


def per_exporter(p: Pipeline, name: str) -> dict[str, float]:
    """{exporter id: value} of one exporter counter."""
    out: dict[str, float] = {}
    for key, value in p.metrics().items():
        if key.startswith(name + "{") and 'exporter="' in key:
            out[key.split('exporter="', 1)[1].split('"', 1)[0]] = value
    return out


def wait_until(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)


def test_exporters_authenticate_through_the_extension(tmp_path: Path) -> None:
    """Right token: every span delivered over both transports. Wrong token: refused by the
    receiver (UNAUTHENTICATED / 401, not retryable), counted exactly as send failures."""
    token_file = tmp_path / "in-token"
    token_file.write_text(TOKEN + "\n")
    g, h, relay_port = free_port(), free_port(), free_port()
    out = tmp_path / "sink.jsonl"
    right_file = tmp_path / "right-token"
    right_file.write_text(TOKEN)
    cfg = sending(relay_port, g, h, {"filename": str(right_file)}, {"token": TOKEN + "x"})
    n_req, per_req = 7, 3
    with (
        Pipeline(receiving(g, h, out, token_file), tmp_path, "sink") as sink,
        Pipeline(cfg, tmp_path, "relay") as relay,
    ):
        for k in range(n_req):
            code = grpc_export(f"127.0.0.1:{relay_port}", request(per_req, first_id=k * 10 + 1))
            assert code == grpc.StatusCode.OK
        n = n_req * per_req

        def settled() -> bool:
            failed = per_exporter(relay, "otelcol_exporter_send_failed_spans_total")
            return file_spans(out) >= 2 * n and sum(failed.values()) >= 2 * n

        wait_until(settled)
        time.sleep(0.5)  # nothing more may arrive
        sent = per_exporter(relay, "otelcol_exporter_sent_spans_total")
        failed = per_exporter(relay, "otelcol_exporter_send_failed_spans_total")
        assert sent.get("otlp_grpc") == n and sent.get("otlp_http") == n, sent
        assert sent.get("otlp_grpc/wrong", 0) == 0 and sent.get("otlp_http/wrong", 0) == 0
        assert failed.get("otlp_grpc/wrong") == n and failed.get("otlp_http/wrong") == n
        assert failed.get("otlp_grpc", 0) == 0 and failed.get("otlp_http", 0) == 0, failed
        assert file_spans(out) == 2 * n  # the right exporters' copies, nothing else
        assert sink.metrics().get("otelcol_receiver_accepted_spans_total") == 2 * n
        # the tokens never reach the logs
        assert TOKEN not in relay.log() and TOKEN not in sink.log()


def test_rotated_token_file_is_used_without_restart(tmp_path: Path) -> None:
    """The exporter asks per request: a token file rewritten under a running pipeline is
    sent from the next request on (the extension re-reads it within a second)."""
    token_file = tmp_path / "in-token"
    token_file.write_text(TOKEN)
    g, h, relay_port = free_port(), free_port(), free_port()
    out = tmp_path / "sink.jsonl"
    relay_file = tmp_path / "relay-token"
    relay_file.write_text("stale-token")
    cfg = sending(relay_port, g, h, {"filename": str(relay_file)}, {"token": "unused"})
    # only the two "right" exporters here
    cfg["exporters"] = {k: v for k, v in cfg["exporters"].items() if "wrong" not in k}
    cfg["extensions"].pop("bearertokenauth/wrong")
    cfg["service"]["extensions"] = ["bearertokenauth/right"]
    cfg["service"]["pipelines"] = {
        "traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc", "otlp_http"]}
    }
    with (
        Pipeline(receiving(g, h, out, token_file), tmp_path, "sink"),
        Pipeline(cfg, tmp_path, "relay") as relay,
    ):
        assert grpc_export(f"127.0.0.1:{relay_port}", request(2)) == grpc.StatusCode.OK
        wait_until(
            lambda: (
                sum(per_exporter(relay, "otelcol_exporter_send_failed_spans_total").values()) >= 4
            )
        )
        assert sum(per_exporter(relay, "otelcol_exporter_send_failed_spans_total").values()) == 4
        assert file_spans(out) == 0
        relay_file.write_text(TOKEN + "\n")
        time.sleep(1.2)  # the extension checks the file's mtime at most once a second
        assert grpc_export(f"127.0.0.1:{relay_port}", request(5, first_id=100)) == (
            grpc.StatusCode.OK
        )
        wait_until(lambda: file_spans(out) >= 10)
        time.sleep(0.3)
        assert file_spans(out) == 10
        sent = per_exporter(relay, "otelcol_exporter_sent_spans_total")
        assert sent == {"otlp_grpc": 5, "otlp_http": 5}


def validate(tmp_path: Path, cfg: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "otel_goblock.cli", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["otlp_grpc", "otlp_http"])
def test_validate_names_the_key_path_and_the_fix(tmp_path: Path, kind: str) -> None:
    endpoint = "127.0.0.1:4317" if kind == "otlp_grpc" else "http://127.0.0.1:4318"
    cfg = {
        "extensions": {"bearertokenauth/off": {"token": "t"}},
        "receivers": {"otlp": {}},
        "exporters": {
            kind: {"endpoint": endpoint, "auth": {"authenticator": "bearertokenauth/missing"}},
            f"{kind}/2": {"endpoint": endpoint, "auth": {"authenticator": "bearertokenauth/off"}},
            f"{kind}/3": {"endpoint": endpoint, "auth": {"authenticator": ""}},
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "exporters": [kind, f"{kind}/2", f"{kind}/3"],
                }
            }
        },
    }
    r = validate(tmp_path, cfg)
    assert r.returncode == 2, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert (
        f"exporters.{kind}.auth.authenticator: extension 'bearertokenauth/missing' is not "
        "configured (add it under `extensions:` and list it in `service.extensions`)"
    ) in text
    assert (
        f"exporters.{kind}/2.auth.authenticator: extension 'bearertokenauth/off' is configured "
        "but not enabled (list it in `service.extensions`)"
    ) in text
    assert f"exporters.{kind}/3.auth.authenticator: expected an extension id" in text
    # fixed: enabled, existing → valid
    cfg["extensions"]["bearertokenauth/missing"] = {"token": "t"}
    cfg["service"]["extensions"] = ["bearertokenauth/missing", "bearertokenauth/off"]
    cfg["exporters"].pop(f"{kind}/3")
    cfg["service"]["pipelines"]["traces"]["exporters"].remove(f"{kind}/3")
    r = validate(tmp_path, cfg)
    assert r.returncode == 0, r.stdout + r.stderr


def test_an_extension_that_cannot_authenticate_fails_the_start(tmp_path: Path) -> None:
    """health_check is a running extension, but not an authenticator: the start fails and
    says which key and why, instead of sending unauthenticated requests."""
    cfg = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{free_port()}"}}}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{free_port()}",
                "tls": {"insecure": True},
                "auth": {"authenticator": "health_check"},
            }
        },
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc"]}}},
    }
    with pytest.raises(
        RuntimeError,
        match=r"exporters\.otlp_grpc\.auth\.authenticator: extension 'health_check' cannot "
        r"authenticate outgoing requests",
    ):
        Pipeline(cfg, tmp_path).start(timeout=20)
