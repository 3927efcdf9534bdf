"""Client TLS material for both transports, read once at start."""

from __future__ import annotations

import socket
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


def fetch_pinned(host: str, port: int, tls: TLSConfig, timeout_s: float) -> tuple[bytes, str]:
    """For `insecure_skip_verify` over gRPC (grpcio has no switch to skip verification): read
    the certificate the server presents, without verifying it, and trust exactly that
    certificate under the name it carries. Returns (PEM, name to verify against).

    Blocking (a TLS handshake): call it from a thread."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    with (
        socket.create_connection((host, port), timeout=timeout_s) as sock,
        ctx.wrap_socket(sock, server_hostname=host) as tsock,
    ):
        der = tsock.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    name = host
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
        name = dns[0] if dns else str(ips[0]) if ips else host
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cns:
            name = str(cns[0].value)
    return ssl.DER_cert_to_PEM_cert(der).encode(), name
