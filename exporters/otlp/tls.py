"""Client TLS material for both transports, read once at start."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
from otel_goblock.exporters.otlp.config import TLSConfig


def _read(path: str) -> bytes | None:
    return Path(path).read_bytes() if path else None


def grpc_credentials(tls: TLSConfig) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file),
        private_key=_read(tls.key_file),
        certificate_chain=_read(tls.cert_file),
    )


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
