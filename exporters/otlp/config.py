"""otlp_grpc / otlp_http exporter options: the collector's names and defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from otel_goblock.component import ComponentID
from otel_goblock.config import Duration
from otel_goblock.config.tlsfiles import tls_file_problems
from otel_goblock.exporterhelper import QueueConfig, RetryConfig, TimeoutConfig


@dataclass
class TLSConfig:
    """Client TLS. Without `insecure`, otlp_grpc uses TLS with the system roots (as the
    collector does); otlp_http uses TLS when the URL is https."""

    insecure: bool = False
    insecure_skip_verify: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name_override: str = ""

    def validate(self) -> list[str]:
        return tls_file_problems(self, ("ca_file", "cert_file", "key_file"))


Compression = Literal["gzip", "none", ""]


@dataclass
class AuthConfig:
    """`auth: {authenticator: <extension id>}` (collector `configauth` client side): every
    request carries the header that extension (e.g. `bearertokenauth/<name>`) gives, asked
    per request, so a rotated token file takes effect without a restart. The extension must
    be configured and listed in `service.extensions` (checked by `validate`, whole-config)."""

    authenticator: str = ""

    def validate(self) -> list[str]:
        if not self.authenticator:
            return ['authenticator: expected an extension id like "bearertokenauth", got ""']
        try:
            ComponentID.parse(self.authenticator)
        except ValueError as e:
            return [f"authenticator: {e}"]
        return []


def _common_problems(timeout: float) -> list[str]:
    return TimeoutConfig(Duration(timeout)).validate()


@dataclass
class Config:
    """otlp_grpc (alias otlp)."""

    endpoint: str = ""  # host:port; a http:// prefix means no TLS, https:// means TLS
    tls: TLSConfig = field(default_factory=TLSConfig)
    headers: dict[str, str] = field(default_factory=dict)
    auth: AuthConfig | None = None  # an authenticator extension adds its header per request
    compression: Compression = "gzip"
    timeout: Duration = field(default_factory=lambda: Duration(5.0))
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> list[str]:
        problems = _common_problems(self.timeout)
        if not self.endpoint:
            problems.append('endpoint: expected host:port like "otelcol:4317", got ""')
        else:
            target = grpc_target(self.endpoint)
            host, sep, port = target.rpartition(":")
            if not target.startswith(("dns:", "unix:", "ipv4:", "ipv6:")) and not (
                sep and host and port.isdigit()
            ):
                problems.append(
                    f'endpoint: expected host:port like "otelcol:4317", got {self.endpoint!r}'
                )
        return problems

    @property
    def insecure(self) -> bool:
        return self.tls.insecure or self.endpoint.startswith("http://")


def grpc_target(endpoint: str) -> str:
    """The gRPC target, without the http(s):// prefix a collector config may carry."""
    for scheme in ("http://", "https://"):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/")
    return endpoint


def _url_problem(key: str, url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f'{key}: expected a URL like "https://otelcol:4318", got {url!r}'
    return None


@dataclass
class HTTPConfig:
    """otlp_http (alias otlphttp)."""

    endpoint: str = ""  # base URL; /v1/traces and /v1/metrics are appended
    traces_endpoint: str = ""  # full URL, overrides endpoint for traces
    metrics_endpoint: str = ""  # full URL, overrides endpoint for metrics
    tls: TLSConfig = field(default_factory=TLSConfig)
    headers: dict[str, str] = field(default_factory=dict)
    auth: AuthConfig | None = None  # an authenticator extension adds its header per request
    compression: Compression = "gzip"
    encoding: Literal["proto", "json"] = "proto"
    timeout: Duration = field(default_factory=lambda: Duration(5.0))
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> list[str]:
        problems = _common_problems(self.timeout)
        if not (self.endpoint or self.traces_endpoint or self.metrics_endpoint):
            problems.append(
                'endpoint: expected a URL like "https://otelcol:4318", got "" '
                "(or set traces_endpoint / metrics_endpoint)"
            )
        for key in ("endpoint", "traces_endpoint", "metrics_endpoint"):
            url = getattr(self, key)
            if url and (p := _url_problem(key, url)):
                problems.append(p)
        return problems

    def signal_url(self, signal: str) -> str:
        """As the collector's otlphttp: the override, else endpoint + /v1/<signal>."""
        override = self.traces_endpoint if signal == "traces" else self.metrics_endpoint
        if override:
            return override
        if not self.endpoint:
            return ""
        sep = "" if self.endpoint.endswith("/") else "/"
        return f"{self.endpoint}{sep}v1/{signal}"
