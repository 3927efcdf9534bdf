"""Server TLS for both transports from one `tls:` block (collector `configtls`).

Files are read at start so a bad path or key fails the start with the path in the message,
not the first handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
from otel_goblock.receivers.otlp.config import TLSServerConfig


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise RuntimeError(f"tls.{what}: cannot read {path!r}: {e.strerror}") from e


def grpc_credentials(cfg: TLSServerConfig) -> grpc.ServerCredentials:
    key = _read(cfg.key_file, "key_file")
    cert = _read(cfg.cert_file, "cert_file")
    ca = _read(cfg.client_ca_file, "client_ca_file") if cfg.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def ssl_context(cfg: TLSServerConfig) -> ssl.SSLContext:
    """TLS 1.2+ (the collector's default minimum); mTLS when client_ca_file is set."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as e:
        raise RuntimeError(
            f"tls: cannot load cert_file {cfg.cert_file!r} / key_file {cfg.key_file!r}: {e}"
        ) from e
    if cfg.client_ca_file:
        try:
            ctx.load_verify_locations(cafile=cfg.client_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise RuntimeError(
                f"tls.client_ca_file: cannot load {cfg.client_ca_file!r}: {e}"
            ) from e
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
