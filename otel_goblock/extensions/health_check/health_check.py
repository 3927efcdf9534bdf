"""Health endpoint with the collector's answer shape, for orchestrators' probes."""

from __future__ import annotations

import time

from aiohttp import web

from otel_goblock.component import Component, CreateSettings, Host, PipelineWatcher
from otel_goblock.extensions.health_check.config import Config


class HealthCheck(Component, PipelineWatcher):
    def __init__(self, settings: CreateSettings, config: Config) -> None:
        self._config = config
        self._runner: web.AppRunner | None = None
        self._up_since: float | None = None

    async def start(self, host: Host) -> None:
        app = web.Application()
        app.router.add_get(self._config.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        ep = self._config.endpoint
        await web.TCPSite(self._runner, ep.host, ep.port).start()

    def ready(self) -> None:
        self._up_since = time.time()

    def not_ready(self) -> None:
        self._up_since = None

    async def _handle(self, _: web.Request) -> web.Response:
        if self._up_since is None:
            return web.json_response({"status": "Server not available"}, status=503)
        up = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._up_since))
        return web.json_response({"status": "Server available", "upSince": up})

    async def shutdown(self) -> None:
        self._up_since = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
