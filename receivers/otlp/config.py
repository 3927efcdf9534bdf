"""Config of the `otlp` receiver: the collector's `protocols: {grpc, http}` shape.

Every rule about what a user may write lives here (collector `config.go`). The one subtle
rule is how a protocol is switched on: as in the collector, naming a protocol enables it,
even with no settings (`protocols: {grpc: }` is gRPC with defaults), and a protocol left
out of a `protocols` mapping is off. The protocol fields are typed as plain dataclasses
(not `X | None`) so that the decoder turns `grpc:` with no value into the defaults, and
absence is marked with a sentinel default that `__post_init__` turns into None (off).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otel_goblock.config import ByteSize, Duration, Endpoint
from otel_goblock.config.tlsfiles import tls_file_problems

MIB = 1024 * 1024


class _Absent:
    """Default of a protocol the user did not name (distinct from `grpc:` with no value)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@dataclass
class TLSServerConfig:
    """Server TLS (collector `configtls.ServerConfig`). `client_ca_file` turns on mTLS:
    clients must present a certificate signed by that CA."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""

    def validate(self) -> list[str]:
        problems = tls_file_problems(self, ("cert_file", "key_file", "client_ca_file"))
        if self.client_ca_file and not self.cert_file:
            problems.append(
                "client_ca_file: expected cert_file and key_file too (mTLS needs a server "
                "certificate), got only client_ca_file"
            )
        return problems


@dataclass
class AuthConfig:
    """`auth: {authenticator: <extension id>}` (collector `configauth`): every request must
    pass that extension (e.g. `bearertokenauth`) or is refused with UNAUTHENTICATED / 401.
    The extension must be configured and listed in `service.extensions`: checked by the
    whole-config validation (service_config.build_config) and again at start."""

    authenticator: str = ""

    def validate(self) -> list[str]:
        if not self.authenticator:
            return ['authenticator: expected an extension id like "bearertokenauth", got ""']
        return []


@dataclass
class KeepaliveServerParameters:
    """Server-side connection management (collector `configgrpc`, grpc-go names). Unset
    (None): gRPC's default."""

    max_connection_idle: Duration | None = None  # close connections idle this long
    max_connection_age: Duration | None = None  # close (GOAWAY) connections this old
    max_connection_age_grace: Duration | None = None  # then let in-flight RPCs finish
    time: Duration | None = None  # ping an idle client after this long
    timeout: Duration | None = None  # and drop it if the ping is not answered


@dataclass
class KeepaliveEnforcementPolicy:
    """How often clients may ping. A client that pings more often is sent GOAWAY
    `ENHANCE_YOUR_CALM` ("too_many_pings"), as grpc-go does."""

    min_time: Duration | None = None  # gRPC default: 5m
    permit_without_stream: bool = False


@dataclass
class KeepaliveConfig:
    server_parameters: KeepaliveServerParameters | None = None
    enforcement_policy: KeepaliveEnforcementPolicy | None = None


@dataclass
class GRPCConfig:
    """gRPC server (collector `configgrpc.ServerConfig`, the options that apply here)."""

    endpoint: Endpoint = field(default_factory=lambda: Endpoint("localhost:4317"))
    max_recv_msg_size_mib: int = 4  # grpc's own default; after decompression
    # requests in flight per client connection. The collector leaves it unlimited; here a
    # bound keeps memory bounded under overload (benchmarks/pipeline_vs_collector.md:
    # 2x overload peaked at 1.3 GB unbounded, 132 MB at 16). Excess streams wait in the
    # client (HTTP/2), nothing is refused. 0: no limit
    max_concurrent_streams: int = 16
    include_metadata: bool = False  # copy request metadata into RequestInfo.headers
    keepalive: KeepaliveConfig | None = None
    tls: TLSServerConfig | None = None
    auth: AuthConfig | None = None

    def validate(self) -> list[str]:
        problems = []
        if self.max_recv_msg_size_mib <= 0:
            problems.append(
                f"max_recv_msg_size_mib: expected > 0, got {self.max_recv_msg_size_mib}"
            )
        if self.max_concurrent_streams < 0:
            problems.append(
                f"max_concurrent_streams: expected >= 0, got {self.max_concurrent_streams}"
            )
        return problems


@dataclass
class HTTPConfig:
    """HTTP server (collector `confighttp.ServerConfig` plus the OTLP url paths)."""

    endpoint: Endpoint = field(default_factory=lambda: Endpoint("localhost:4318"))
    # confighttp's default; applies to the body as sent and again after decompression
    max_request_body_size: ByteSize = field(default_factory=lambda: ByteSize(20 * MIB))
    traces_url_path: str = "/v1/traces"
    metrics_url_path: str = "/v1/metrics"
    include_metadata: bool = False  # copy request headers into RequestInfo.headers
    tls: TLSServerConfig | None = None
    auth: AuthConfig | None = None

    def validate(self) -> list[str]:
        problems = []
        if self.max_request_body_size <= 0:
            problems.append(
                f"max_request_body_size: expected > 0, got {int(self.max_request_body_size)}"
            )
        for name in ("traces_url_path", "metrics_url_path"):
            path = getattr(self, name)
            if not path.startswith("/"):
                problems.append(f'{name}: expected a path starting with "/", got {path!r}')
        if self.traces_url_path == self.metrics_url_path:
            problems.append(
                "metrics_url_path: expected a path different from traces_url_path, got "
                f"{self.metrics_url_path!r} for both"
            )
        return problems


@dataclass
class Protocols:
    """Which servers run: None is off. A protocol named with no value gets its defaults."""

    # typed without `| None` on purpose: the decoder then reads `grpc:` (null) as {}
    grpc: GRPCConfig = ABSENT
    http: HTTPConfig = ABSENT

    def __post_init__(self) -> None:
        if self.grpc is ABSENT:
            self.grpc = None
        if self.http is ABSENT:
            self.http = None

    @classmethod
    def all_defaults(cls) -> Protocols:
        return cls(grpc=GRPCConfig(), http=HTTPConfig())

    def validate(self) -> list[str]:
        if self.grpc is None and self.http is None:
            return [
                ": must specify at least one protocol (grpc or http) when using the otlp receiver"
            ]
        if (
            self.grpc is not None
            and self.http is not None
            and self.grpc.endpoint == self.http.endpoint
            and self.grpc.endpoint.port != 0
        ):
            return [
                "http.endpoint: expected an endpoint different from grpc.endpoint (one port "
                f"cannot serve both), got {self.http.endpoint!r} for both"
            ]
        return []


@dataclass
class Config:
    """`receivers.otlp`. With no `protocols` at all both servers run with defaults (the
    factory default, as the collector's `createDefaultConfig`)."""

    protocols: Protocols = field(default_factory=Protocols.all_defaults)

    def validate(self) -> list[str]:
        return []
