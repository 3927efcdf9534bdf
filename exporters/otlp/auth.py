"""Client-side authentication of the OTLP exporters (collector `configauth` for clients):
`auth.authenticator` names an extension (`bearertokenauth[/name]`) that gives, per request,
the header(s) to send. Asked per request, not once, so a token file the extension re-reads
(a rotated secret) takes effect without a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from otel_goblock.exporters.otlp.config import AuthConfig

from otel_goblock.component import ComponentID, Host

HeaderSource = Callable[[], dict[str, str]]


def client_auth(
    exporter_id: ComponentID, auth: AuthConfig | None, host: Host | None
) -> HeaderSource | None:
    """The running extension's `client_headers` (None without `auth`); raises at start,
    naming the key path and the fix, when the extension is not running or cannot add
    headers to outgoing requests."""
    if auth is None or not auth.authenticator:
        return None
    ext_id = auth.authenticator
    path = f"exporters.{exporter_id}.auth.authenticator"
    ext = host.get_extension(ext_id) if host is not None else None
    if ext is None:
        raise RuntimeError(
            f"{path}: extension {ext_id!r} is not running (configure it under `extensions:` "
            "and list it in `service.extensions`)"
        )
    headers = getattr(ext, "client_headers", None)
    if not callable(headers):
        raise RuntimeError(
            f"{path}: extension {ext_id!r} cannot authenticate outgoing requests "
            '(use a client authenticator such as "bearertokenauth")'
        )
    return headers


def without_keys(headers: dict[str, str], names: set[str]) -> dict[str, str]:
    """`headers` minus those the authenticator sets (case-insensitive): its value wins."""
    return {k: v for k, v in headers.items() if k.lower() not in names}
