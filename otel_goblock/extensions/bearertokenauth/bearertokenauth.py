"""Bearer-token authentication for servers (receivers) and clients (exporters).

A receiver whose protocol says `auth: {authenticator: bearertokenauth}` asks this
extension, per request, whether the request's headers carry `<scheme> <token>`. The
comparison is `hmac.compare_digest` over the whole expected header value, so its time does
not depend on how many leading characters of a guess are right. The token is never logged
and never part of an error message.

With `filename`, the file is read at start and re-read when its modification time changes
(checked at most once a second), so a rotated Kubernetes secret takes effect without a
restart, as in the collector.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Mapping

from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.extensions.bearertokenauth.config import Config

_RECHECK_S = 1.0


class BearerTokenAuth(Component):
    def __init__(self, settings: CreateSettings, config: Config) -> None:
        self._config = config
        self._logger = settings.logger
        self._header = config.header.lower()
        self._expected = b""
        self._mtime = 0.0
        self._checked = 0.0
        if config.token:
            self._set(config.token)

    def _set(self, token: str) -> None:
        self._expected = f"{self._config.scheme} {token.strip()}".encode()

    def _load_file(self) -> None:
        path = self._config.filename
        try:
            st = os.stat(path)
            if st.st_mtime != self._mtime:
                with open(path, encoding="utf-8") as f:
                    token = f.read().strip()
                if not token:
                    raise RuntimeError(f"bearertokenauth: filename {path!r} is empty")
                self._set(token)
                self._mtime = st.st_mtime
        except OSError as e:
            raise RuntimeError(
                f"bearertokenauth: cannot read filename {path!r}: {e.strerror}"
            ) from e

    async def start(self, host: Host) -> None:
        if self._config.filename:
            self._load_file()  # fails the start: a missing secret is a config error
        self._logger.info(
            "bearertokenauth ready",
            extra={"header": self._header, "source": "file" if self._config.filename else "token"},
        )

    def _refresh(self) -> None:
        if not self._config.filename:
            return
        now = time.monotonic()
        if now - self._checked < _RECHECK_S:
            return
        self._checked = now
        try:
            self._load_file()
        except RuntimeError as e:  # keep the last good token; say so once per change
            self._logger.warning("%s; keeping the previous token", e)

    def authenticate(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> bool:
        """True when the configured header carries exactly `<scheme> <token>`.

        `headers` is a mapping (HTTP) or gRPC invocation metadata (pairs, keys lower-case).
        """
        self._refresh()
        items = headers.items() if isinstance(headers, Mapping) else headers
        got = None
        for k, v in items:
            if isinstance(k, str) and k.lower() == self._header:
                got = v
                break
        if got is None or not self._expected:
            return False
        value = got.encode() if isinstance(got, str) else bytes(got)
        return hmac.compare_digest(value.strip(), self._expected)

    def client_headers(self) -> dict[str, str]:
        """The header an exporter sends to authenticate itself with the same token."""
        self._refresh()
        return {self._header: self._expected.decode()}
