"""Bearer-token authentication on the otlp receiver, in a real `otel-goblock run`:
without the right `authorization: Bearer <token>` header a request is refused
(gRPC UNAUTHENTICATED, HTTP 401) and nothing reaches the pipeline; with it, spans flow.
The exporter side authenticates with `headers` (a second pipeline relays to the first)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from otel_goblock.config import ConfigError, decode
from otel_goblock.extensions.bearertokenauth.config import Config as AuthConfig

from .common import Pipeline, file_spans, free_port, grpc_export, request

TOKEN = "s3cr3t-T0KEN-for-hardening-tests"


def auth_config(
    grpc_port: int, http_port: int, out: Path, ext: dict[str, Any], name: str = "bearertokenauth"
) -> dict[str, Any]:
    """A receiving pipeline whose otlp receiver (both protocols) requires the token of the
    bearertokenauth extension `name`; spans go to the file `out`."""
    auth = {"auth": {"authenticator": name}}
    return {
        "extensions": {name: ext},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{grpc_port}", **auth},
                    "http": {"endpoint": f"127.0.0.1:{http_port}", **auth},
                }
            }
        },
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "extensions": [name],
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}},
        },
    }


def wait_spans(path: Path, n: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = file_spans(path)
        if got >= n:
            return got
        time.sleep(0.1)
    return file_spans(path)


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOBLOCK_TEST_TOKEN", TOKEN)
    g, h = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    cfg = auth_config(g, h, out, {"token": "${env:GOBLOCK_TEST_TOKEN}"})
    with Pipeline(cfg, tmp_path) as p:
        yield p, f"127.0.0.1:{g}", f"http://127.0.0.1:{h}/v1/traces", out


BAD_HEADERS = [
    (),
    (("authorization", f"Bearer {TOKEN[:-1]}"),),  # a prefix of the token
    (("authorization", f"Bearer {TOKEN}x"),),  # the token plus one character
    (("authorization", TOKEN),),  # no scheme
    (("authorization", f"Basic {TOKEN}"),),  # another scheme
    (("x-api-key", f"Bearer {TOKEN}"),),  # another header
]


def test_grpc_refuses_without_valid_token_and_accepts_with_it(secured) -> None:
    pipeline, addr, _, out = secured
    for md in BAD_HEADERS:
        assert grpc_export(addr, request(), md) == grpc.StatusCode.UNAUTHENTICATED, md
    ok = grpc_export(addr, request(3), (("authorization", f"Bearer {TOKEN}"),))
    assert ok == grpc.StatusCode.OK
    assert wait_spans(out, 3) == 3  # exactly the authenticated request
    m = pipeline.metrics()
    assert m.get("otelcol_receiver_accepted_spans_total") == 3


def test_http_refuses_without_valid_token_and_accepts_with_it(secured) -> None:
    _, _, url, out = secured
    pb = {"Content-Type": "application/x-protobuf"}
    for md in BAD_HEADERS:
        r = requests.post(url, data=request(), headers={**pb, **dict(md)}, timeout=10)
        assert r.status_code == 401, md
        assert TOKEN not in r.text
    # refused before routing: an unauthenticated client learns nothing about paths
    r = requests.get(url.replace("/v1/traces", "/nope"), timeout=10)
    assert r.status_code == 401
    r = requests.post(
        url, data=request(2), headers={**pb, "Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200
    assert wait_spans(out, 2) == 2


def test_token_from_file_and_exporter_headers_relay(tmp_path: Path) -> None:
    """`filename` instead of `token`; a relay pipeline authenticates with its exporter's
    `headers` (the collector's way of sending a static bearer token)."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    g, h = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    sink = auth_config(g, h, out, {"filename": str(token_file)})
    relay_port = free_port()
    relay = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{relay_port}"}}}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{g}",
                "tls": {"insecure": True},
                "headers": {"authorization": f"Bearer {TOKEN}"},
            },
            "otlp_grpc/wrong": {
                "endpoint": f"127.0.0.1:{g}",
                "tls": {"insecure": True},
                "headers": {"authorization": "Bearer wrong"},
                "retry_on_failure": {"enabled": False},
            },
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc"]},
                "traces/wrong": {"receivers": ["otlp"], "exporters": ["otlp_grpc/wrong"]},
            }
        },
    }
    with Pipeline(sink, tmp_path, "sink"), Pipeline(relay, tmp_path, "relay") as r:
        assert grpc_export(f"127.0.0.1:{relay_port}", request(4)) == grpc.StatusCode.OK
        assert wait_spans(out, 4) == 4
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            failed = r.metrics().get("otelcol_exporter_send_failed_spans_total", 0)
            if failed >= 4:
                break
            time.sleep(0.2)
        assert failed == 4  # the wrong token's copy is refused, permanently
        assert file_spans(out) == 4


def test_unknown_authenticator_fails_the_start(tmp_path: Path) -> None:
    g = free_port()
    cfg = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{g}", "auth": {"authenticator": "nope"}}
                }
            }
        },
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}},
    }
    with pytest.raises(RuntimeError, match=r"auth\.authenticator: extension 'nope'"):
        Pipeline(cfg, tmp_path).start(timeout=15)


def test_config_rules_and_redaction() -> None:
    assert decode(AuthConfig, {"token": "a"}).validate() == []
    assert decode(AuthConfig, {"filename": "/x"}).validate() == []
    assert "exactly one" in AuthConfig().validate()[0]
    assert "exactly one" in AuthConfig(token="a", filename="/x").validate()[0]
    with pytest.raises(ConfigError, match="exactly one"):
        decode(AuthConfig, {})
    assert TOKEN not in repr(decode(AuthConfig, {"token": TOKEN}))


def test_token_file_rotation_takes_effect_without_restart(tmp_path: Path) -> None:
    """A rotated secret (new file content, new mtime) is picked up within a second; a
    file that disappears keeps the last good token rather than locking everyone out."""
    import asyncio
    import logging
    import os

    from opentelemetry.metrics import get_meter

    from otel_goblock.component import ComponentID, CreateSettings
    from otel_goblock.extensions.bearertokenauth.bearertokenauth import BearerTokenAuth

    f = tmp_path / "token"
    f.write_text("old-token\n")
    ext = BearerTokenAuth(
        CreateSettings(
            ComponentID("bearertokenauth"), "extension", logging.getLogger("t"), get_meter("t")
        ),
        AuthConfig(filename=str(f)),
    )
    asyncio.run(ext.start(None))  # type: ignore[arg-type]
    assert ext.authenticate({"Authorization": "Bearer old-token"})
    f.write_text("new-token\n")
    os.utime(f, (time.time() + 5, time.time() + 5))  # a distinct mtime even on coarse clocks
    time.sleep(1.1)
    assert ext.authenticate([("authorization", "Bearer new-token")])
    assert not ext.authenticate([("authorization", "Bearer old-token")])
    f.unlink()
    time.sleep(1.1)
    assert ext.authenticate([("authorization", "Bearer new-token")])
    assert ext.client_headers() == {"authorization": "Bearer new-token"}
