"""TLS and mTLS on both transports, with certificates made here (a throwaway CA)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HTTPSpanExporter,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from .conftest import both
from .test_bad_input import GOOD, TRACES
from .test_sdk_clients import assert_same_spans, make_spans, received_spans


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: Any = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = (subject, key) if issuer is None else issuer
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
    return b.sign(issuer_key, hashes.SHA256())


class PKI:
    """ca.pem, server.{pem,key}, client.{pem,key}, and other-ca.pem (trusts nothing here)."""

    def __init__(self, d: Path) -> None:
        self.dir = d
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("test-ca", ca_key, None, ca=True)
        self._write("ca.pem", ca)
        for who, usage in (
            ("server", ExtendedKeyUsageOID.SERVER_AUTH),
            ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
        ):
            key = ec.generate_private_key(ec.SECP256R1())
            self._write(f"{who}.pem", _cert(who, key, ("test-ca", ca_key), usage=usage))
            (d / f"{who}.key").write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        other_key = ec.generate_private_key(ec.SECP256R1())
        rogue_key = ec.generate_private_key(ec.SECP256R1())
        self._write("other-ca.pem", _cert("other-ca", other_key, None, ca=True))
        rogue = _cert(
            "rogue", rogue_key, ("other-ca", other_key), usage=ExtendedKeyUsageOID.CLIENT_AUTH
        )
        self._write("rogue.pem", rogue)
        (d / "rogue.key").write_bytes(
            rogue_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def _write(self, name: str, cert: x509.Certificate) -> None:
        (self.dir / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def server_tls(self, mtls: bool) -> dict[str, str]:
        tls = {"cert_file": self.path("server.pem"), "key_file": self.path("server.key")}
        if mtls:
            tls["client_ca_file"] = self.path("ca.pem")
        return tls

    def grpc_creds(self, client: str | None = "client") -> grpc.ChannelCredentials:
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=self.read("ca.pem"))
        return grpc.ssl_channel_credentials(
            root_certificates=self.read("ca.pem"),
            private_key=self.read(f"{client}.key"),
            certificate_chain=self.read(f"{client}.pem"),
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def grpc_code(target: str, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    ch = grpc.secure_channel(target, creds) if creds is not None else grpc.insecure_channel(target)
    with ch:
        call = ch.unary_unary(TRACES, request_serializer=None, response_deserializer=None)
        try:
            call(GOOD, timeout=5)
        except grpc.RpcError as e:
            return e.code()
        return grpc.StatusCode.OK


def test_tls_both_transports_with_sdk_exporters(
    start_receiver: Any, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these variables override the exporter's session.verify (requests#3829):
    # without removing them the exporter would ignore our CA and trust only the system's
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = pki.server_tls(mtls=False)
    r = start_receiver(both(grpc={"tls": tls}, http={"tls": tls}))
    spans = make_spans(5)
    grpc_exp = OTLPSpanExporter(
        endpoint=r.grpc_target, insecure=False, credentials=pki.grpc_creds(None), timeout=10
    )
    assert grpc_exp.export(spans) == SpanExportResult.SUCCESS
    grpc_exp.shutdown()
    assert_same_spans(spans, received_spans(r))
    r.consumer.traces.clear()
    http_exp = HTTPSpanExporter(
        endpoint=r.http_url(scheme="https"), certificate_file=pki.path("ca.pem"), timeout=10
    )
    assert http_exp.export(spans) == SpanExportResult.SUCCESS
    http_exp.shutdown()
    assert_same_spans(spans, received_spans(r))
    # plaintext clients are not served
    assert grpc_code(r.grpc_target, None) == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(r.http_url(), data=GOOD, timeout=5)


def test_mtls_requires_a_client_certificate_from_the_ca(start_receiver: Any, pki: PKI) -> None:
    tls = pki.server_tls(mtls=True)
    r = start_receiver(both(grpc={"tls": tls}, http={"tls": tls}))
    # gRPC: a certificate from the CA is served; none, or one from another CA, is refused
    assert grpc_code(r.grpc_target, pki.grpc_creds("client")) == grpc.StatusCode.OK
    assert grpc_code(r.grpc_target, pki.grpc_creds(None)) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(r.grpc_target, pki.grpc_creds("rogue")) == grpc.StatusCode.UNAVAILABLE
    # HTTP: the same rules
    ok = requests.post(
        r.http_url(scheme="https"),
        data=GOOD,
        headers={"Content-Type": "application/x-protobuf"},
        verify=pki.path("ca.pem"),
        cert=(pki.path("client.pem"), pki.path("client.key")),
        timeout=5,
    )
    assert ok.status_code == 200
    for cert in (None, (pki.path("rogue.pem"), pki.path("rogue.key"))):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(
                r.http_url(scheme="https"),
                data=GOOD,
                headers={"Content-Type": "application/x-protobuf"},
                verify=pki.path("ca.pem"),
                cert=cert,
                timeout=5,
            )
    assert len(r.consumer.traces) == 2


def test_tls_files_that_are_not_certificates_fail_the_start(start_receiver: Any, pki: PKI) -> None:
    bad = {"cert_file": pki.path("server.key"), "key_file": pki.path("server.key")}
    with pytest.raises(RuntimeError, match="cert_file"):
        start_receiver({"protocols": {"http": {"endpoint": "127.0.0.1:0", "tls": bad}}})
