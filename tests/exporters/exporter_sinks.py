"""Real receiving ends for the exporter tests: a grpc.aio OTLP server and an aiohttp OTLP/HTTP
server on free loopback ports, recording the request bytes exactly as they arrived, plus
data builders and a telemetry reader. (No __init__.py here: imported by file name.)"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_goblock.component import ComponentID, CreateSettings, Host
from otel_goblock.pdata import Metrics, Traces

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trace_request(n_spans: int, seed: int = 0, n_attrs: int = 3) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="t")))
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    for i in range(n_spans):
        sp = ss.spans.add()
        sp.trace_id = os.urandom(16)
        sp.span_id = (seed * 1_000_000 + i + 1).to_bytes(8, "big")
        sp.parent_span_id = os.urandom(8)
        sp.name = f"span-{seed}-{i}"
        sp.kind = 2
        sp.start_time_unix_nano = 1_700_000_000_000_000_000 + i
        sp.end_time_unix_nano = sp.start_time_unix_nano + 1000
        for a in range(n_attrs):
            sp.attributes.append(KeyValue(key=f"k{a}", value=AnyValue(int_value=a * i)))
        sp.attributes.append(KeyValue(key="s", value=AnyValue(string_value="x" * 40)))
        ev = sp.events.add()
        ev.name = "ev"
        ev.time_unix_nano = sp.start_time_unix_nano + 10
    return req


def traces(n_spans: int, seed: int = 0) -> Traces:
    return Traces(raw=trace_request(n_spans, seed).SerializeToString(), span_count=n_spans)


def metrics_request(n_points: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    m = sm.metrics.add()
    m.name = "requests"
    m.sum.aggregation_temporality = 2
    m.sum.is_monotonic = True
    for i in range(n_points):
        p = m.sum.data_points.add()
        p.as_int = i
        p.time_unix_nano = 1_700_000_000_000_000_000 + i
        p.attributes.append(KeyValue(key="i", value=AnyValue(int_value=i)))
    return req


def metrics(n_points: int) -> Metrics:
    return Metrics(raw=metrics_request(n_points).SerializeToString())


class NoHost(Host):
    def get_extension(self, id_: str):  # type: ignore[no-untyped-def]
        return None

    def report_fatal_error(self, err: BaseException) -> None:
        raise err


class Telemetry:
    """An SDK MeterProvider with an InMemoryMetricReader: what the exporter counted."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def settings(self, id_: str, signals: frozenset[str] = frozenset()) -> CreateSettings:
        return CreateSettings(
            id=ComponentID.parse(id_),
            kind="exporter",
            logger=logging.getLogger(f"test.exporter.{id_}"),
            meter=self.provider.get_meter(id_),
            signals=signals,
        )

    def value(self, name: str, **attrs: str) -> float:
        data = self.reader.get_metrics_data()
        total = 0.0
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != name:
                        continue
                    for p in m.data.data_points:
                        if set(attrs.items()) <= set((p.attributes or {}).items()):
                            total += p.value
        return total


def retry_info_status(code: int, message: str, delay_s: float) -> bytes:
    info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(delay_s), nanos=int((delay_s % 1) * 1e9))
    )
    st = status_pb2.Status(code=code, message=message)
    st.details.add().Pack(info)
    return st.SerializeToString()


@dataclass
class Fault:
    """What the sink answers to the next `times` calls (then it accepts again)."""

    code: grpc.StatusCode
    times: int = 1
    retry_delay_s: float | None = None


@dataclass
class GrpcSink:
    """A grpc.aio OTLP server that keeps each request's bytes as they arrived."""

    port: int = 0
    tls: tuple[bytes, bytes, bytes | None] | None = None  # (key, cert, client CA)
    traces: list[bytes] = field(default_factory=list)
    metrics: list[bytes] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)  # monotonic time of each call
    faults: list[Fault] = field(default_factory=list)
    rejected_per_call: int = 0
    delay_s: float = 0.0
    server: grpc.aio.Server | None = None

    def span_count(self) -> int:
        n = 0
        for raw in self.traces:
            req = ExportTraceServiceRequest.FromString(raw)
            n += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        return n

    async def _maybe_fail(self, context: grpc.aio.ServicerContext) -> None:
        self.calls.append(time.monotonic())
        self.metadata.append({k: v for k, v in context.invocation_metadata() or ()})
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.faults:
            fault = self.faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self.faults.pop(0)
            trailers = ()
            if fault.retry_delay_s is not None:
                detail = retry_info_status(fault.code.value[0], "slow down", fault.retry_delay_s)
                trailers = (("grpc-status-details-bin", detail),)
            await context.abort(fault.code, "injected by the test sink", trailers)

    async def _traces(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await self._maybe_fail(context)
        self.traces.append(raw)
        resp = ExportTraceServiceResponse()
        if self.rejected_per_call:
            resp.partial_success.rejected_spans = self.rejected_per_call
            resp.partial_success.error_message = "some spans were bad"
        return resp.SerializeToString()

    async def _metrics(self, raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await self._maybe_fail(context)
        self.metrics.append(raw)
        return ExportMetricsServiceResponse().SerializeToString()

    async def start(self) -> GrpcSink:
        # raw (bytes in, bytes out) handlers: the test sees the request exactly as sent
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(self._traces)},
        )
        mhandler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            {"Export": grpc.unary_unary_rpc_method_handler(self._metrics)},
        )
        self.server = grpc.aio.server(
            handlers=[handler, mhandler], options=[("grpc.so_reuseport", 0)]
        )
        addr = f"127.0.0.1:{self.port}"
        if self.tls:
            key, cert, client_ca = self.tls
            creds = grpc.ssl_server_credentials(
                [(key, cert)], root_certificates=client_ca, require_client_auth=bool(client_ca)
            )
            self.port = self.server.add_secure_port(addr, creds)
        else:
            self.port = self.server.add_insecure_port(addr)
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None


@dataclass
class HttpSink:
    """An aiohttp OTLP/HTTP server recording body bytes (after gzip) and headers."""

    port: int = 0
    ssl_context: object = None
    bodies: dict[str, list[bytes]] = field(default_factory=lambda: {"traces": [], "metrics": []})
    headers: list[dict[str, str]] = field(default_factory=list)
    wire_sizes: list[int] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    faults: list[tuple[int, int, dict[str, str]]] = field(default_factory=list)
    rejected_per_call: int = 0
    runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        signal = request.match_info["signal"]
        self.calls.append(time.monotonic())
        self.headers.append(dict(request.headers))
        wire = await request.content.read()
        self.wire_sizes.append(len(wire))
        if self.faults:
            status, times, hdrs = self.faults[0]
            if times <= 1:
                self.faults.pop(0)
            else:
                self.faults[0] = (status, times - 1, hdrs)
            body = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="injected")
            return web.Response(
                status=status,
                body=body.SerializeToString(),
                headers=hdrs,
                content_type="application/x-protobuf",
            )
        if request.headers.get("Content-Encoding") == "gzip":
            wire = gzip.decompress(wire)
        self.bodies[signal].append(wire)
        resp = (
            ExportTraceServiceResponse if signal == "traces" else ExportMetricsServiceResponse
        )()
        if self.rejected_per_call and signal == "traces":
            resp.partial_success.rejected_spans = self.rejected_per_call
            resp.partial_success.error_message = "some spans were bad"
        return web.Response(body=resp.SerializeToString(), content_type="application/x-protobuf")

    async def start(self) -> HttpSink:
        # auto_decompress off: the test sees the bytes on the wire and gunzips them itself
        app = web.Application(handler_args={"auto_decompress": False})
        app.router.add_post("/v1/{signal}", self._handle)
        app.router.add_post("/custom/{signal}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_context, reuse_address=True
        )
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


def make_certs(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key():  # type: ignore[no-untyped-def]
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test-ca"))
        .issuer_name(name("test-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, server: bool):  # type: ignore[no-untyped-def]
        k = key()
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
                        if server
                        else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
                    ]
                ),
                critical=False,
            )
        )
        if server:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return k, b.sign(ca_key, hashes.SHA256())

    out: dict[str, Path] = {}

    def write(label: str, k, cert) -> None:  # type: ignore[no-untyped-def]
        out[f"{label}_cert"] = tmp / f"{label}.crt"
        out[f"{label}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if k is not None:
            out[f"{label}_key"] = tmp / f"{label}.key"
            out[f"{label}_key"].write_bytes(
                k.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )

    write("ca", None, ca)
    write("server", *leaf("localhost", True))
    write("client", *leaf("client", False))
    return out


async def wait_until(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
