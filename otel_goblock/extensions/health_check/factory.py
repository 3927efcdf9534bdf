from __future__ import annotations

from otel_goblock.component import Factory
from otel_goblock.extensions.health_check.config import Config
from otel_goblock.extensions.health_check.health_check import HealthCheck

FACTORY = Factory(
    type="health_check",
    kind="extension",
    description="HTTP health endpoint: 200 while the pipelines run, 503 otherwise",
    config_class=Config,
    create=lambda settings, config, _next: HealthCheck(settings, config),
    signals=frozenset(),
)
