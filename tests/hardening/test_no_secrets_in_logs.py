"""At the default log level (info) the agent's stderr carries no secret and no span
payload: not the bearer token (receiver auth, exporter headers), not the TLS private key,
not span attribute values — also on the error paths (refused requests, a failing exporter,
a malformed body), which are where payloads usually leak."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .common import Pipeline, free_port, grpc_export, request

TOKEN = "tok-9f8e7d6c5b4a-SECRET"
PAYLOAD = "payload-value-7c1d2e3f-DO-NOT-LOG"


def self_signed(d: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (d / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(key_pem)
    return d / "server.pem", d / "server.key", key_pem


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_token_key_and_span_values_stay_out_of_info_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOBLOCK_TEST_TOKEN", TOKEN)
    cert, key, key_pem = self_signed(tmp_path)
    g, h, dead = free_port(), free_port(), free_port()
    auth = {"authenticator": "bearertokenauth"}
    cfg = {
        "extensions": {"bearertokenauth": {"token": "${env:GOBLOCK_TEST_TOKEN}"}},
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{g}", "auth": auth},
                    "http": {
                        "endpoint": f"127.0.0.1:{h}",
                        "tls": {"cert_file": str(cert), "key_file": str(key)},
                    },
                }
            }
        },
        "processors": {"batch": {"timeout": "50ms"}},
        "exporters": {
            "debug": {"verbosity": "basic"},
            # nothing listens there: every send fails and is logged
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{dead}",
                "tls": {"insecure": True},
                "headers": {"authorization": "Bearer ${env:GOBLOCK_TEST_TOKEN}"},
                "timeout": "300ms",
                "retry_on_failure": {"initial_interval": "50ms", "max_elapsed_time": "300ms"},
            },
        },
        "service": {
            "extensions": ["bearertokenauth"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["debug", "otlp_grpc"],
                }
            },
            "telemetry": {"logs": {"level": "info"}},
        },
    }
    p = Pipeline(cfg, tmp_path).start()
    try:
        md = (("authorization", f"Bearer {TOKEN}"),)
        for i in range(5):
            assert grpc_export(f"127.0.0.1:{g}", request(3, PAYLOAD, 10 * i), md) == (
                grpc.StatusCode.OK
            )
        bad = (("authorization", f"Bearer {TOKEN}-{PAYLOAD}"),)
        assert grpc_export(f"127.0.0.1:{g}", request(1, PAYLOAD), bad) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        # a malformed body that contains the payload string
        garbage = b"\xff\xff" + PAYLOAD.encode() + TOKEN.encode()
        assert grpc_export(f"127.0.0.1:{g}", garbage, md) == grpc.StatusCode.INVALID_ARGUMENT
        r = requests.post(
            f"https://127.0.0.1:{h}/v1/traces",
            data=b"{" + PAYLOAD.encode(),
            headers={"Content-Type": "application/json"},
            verify=False,
            timeout=10,
        )
        assert r.status_code == 400
        # let the exporter fail its retries and log them
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if p.metrics().get("otelcol_exporter_send_failed_spans_total", 0) >= 15:
                break
            time.sleep(0.2)
        assert p.metrics().get("otelcol_exporter_send_failed_spans_total", 0) >= 15
    finally:
        p.stop()
    log = p.log()
    assert '"level": "info"' in log or '"level":"info"' in log  # the log is really there
    assert "debug" in log and "Traces" in log  # the debug exporter printed its batches
    assert TOKEN not in log
    assert PAYLOAD not in log
    key_body = b"".join(key_pem.splitlines()[1:-1]).decode()
    assert key_body[:40] not in log
