"""The health endpoint answers "available" only once every pipeline has started, and
stops before any component shuts down — an orchestrator that routes traffic on it must
not send spans to a receiver that has not opened its port yet (the eBPF receiver takes
seconds to compile its programs)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from otel_goblock.component import Component, Factory, Host, Registry, default_registry
from otel_goblock.config.loader import load_text
from otel_goblock.service import Service
from otel_goblock.service_config import build_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import free_port


@dataclass
class _GateConfig:
    def validate(self) -> list[str]:
        return []


class _GatedReceiver(Component):
    """A receiver whose start waits on a test-held gate. A fake: a real receiver's slow
    start (BPF compilation) cannot be held open at a chosen moment."""

    gate: asyncio.Event

    async def start(self, host: Host) -> None:
        await self.gate.wait()


def _registry() -> Registry:
    gated = Factory(
        type="gated",
        kind="receiver",
        description="test receiver that starts when told",
        config_class=_GateConfig,
        create=lambda settings, config, consumers: _GatedReceiver(),
    )
    return Registry([*default_registry().factories(), gated])


async def _status(port: int) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/") as r:
        return r.status


def test_health_is_unavailable_until_every_receiver_has_started() -> None:
    port = free_port()
    raw = load_text(
        f"""
receivers: {{gated: {{}}}}
exporters: {{debug: {{}}}}
extensions: {{health_check: {{endpoint: "127.0.0.1:{port}"}}}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{level: none}}}}
  pipelines: {{traces: {{receivers: [gated], exporters: [debug]}}}}
"""
    )

    async def scenario() -> list[int]:
        _GatedReceiver.gate = asyncio.Event()
        service = Service(build_config(raw, _registry()))
        starting = asyncio.create_task(service.start())
        seen = []
        for _ in range(100):  # the extension opens its port before the receiver starts
            await asyncio.sleep(0.02)
            try:
                seen.append(await _status(port))
                break
            except aiohttp.ClientConnectionError:
                continue
        _GatedReceiver.gate.set()
        await starting
        seen.append(await _status(port))
        shutting = asyncio.create_task(service.shutdown(5))
        await asyncio.sleep(0)  # not_ready() runs before the first component stops
        assert not shutting.done()
        try:
            seen.append(await _status(port))
        except aiohttp.ClientConnectionError:
            seen.append(0)  # already closed: also not "available"
        await shutting
        return seen

    before, after_start, during_shutdown = asyncio.run(scenario())
    assert (before, after_start) == (503, 200)
    assert during_shutdown in (503, 0)
