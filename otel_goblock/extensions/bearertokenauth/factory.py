"""Factory of the `bearertokenauth` extension."""

from __future__ import annotations

from otel_goblock.component import Factory
from otel_goblock.extensions.bearertokenauth.bearertokenauth import BearerTokenAuth
from otel_goblock.extensions.bearertokenauth.config import Config

FACTORY = Factory(
    type="bearertokenauth",
    kind="extension",
    description="checks (receivers) or adds (exporters) an `authorization: Bearer <token>` header",
    config_class=Config,
    create=lambda settings, config, _next: BearerTokenAuth(settings, config),
    signals=frozenset(),
)
