"""Session fixtures of the end-to-end tests: build once per run, then Jaeger and the demo
service on free loopback ports, the demo exporting straight to Jaeger.

To put an otel-goblock pipeline between them, start the pipeline with an OTLP receiver on
a free port, its exporter pointed at `jaeger.otlp_endpoint`, and get a demo exporting to it:

    def test_x(start_demo, jaeger):
        demo = start_demo(otlp_endpoint=f"http://127.0.0.1:{pipeline_port}",
                          service_name="demo-goblock")
        r = hit(demo.url, "/mutex?ms=100")
        trace = JaegerClient(jaeger.query_url).wait_trace(r.trace_id)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import DemoBuild, DemoService, JaegerClient, JaegerService, build_demo, build_jaeger


@pytest.fixture(scope="session")
def demo_build() -> DemoBuild:
    return build_demo()


@pytest.fixture(scope="session")
def jaeger_binary() -> Path:
    return build_jaeger()


@pytest.fixture(scope="session")
def jaeger(
    jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JaegerService]:
    svc = JaegerService(run_dir=tmp_path_factory.mktemp("jaeger"))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def jaeger_client(jaeger: JaegerService) -> JaegerClient:
    return JaegerClient(jaeger.query_url)


@pytest.fixture(scope="session")
def start_demo(
    demo_build: DemoBuild, jaeger: JaegerService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., DemoService]]:
    """Factory: start_demo(otlp_endpoint=..., variant="dwarf"|"stripped", service_name=...,
    binary=..., extra_env={...}) -> a running DemoService, stopped at the end of the session
    (or earlier by the test: stop() is idempotent). Depends on `jaeger` so that demos stop
    (and flush their last spans) before Jaeger does."""
    started: list[DemoService] = []

    def start(**kw: Any) -> DemoService:
        svc = DemoService(run_dir=tmp_path_factory.mktemp("demo"), **kw)
        started.append(svc)
        svc.start()
        return svc

    try:
        yield start
    finally:
        for svc in reversed(started):
            svc.stop()


@pytest.fixture(scope="session")
def demo(start_demo: Callable[..., DemoService], jaeger: JaegerService) -> DemoService:
    """The demo service (DWARF build) exporting straight to Jaeger."""
    return start_demo(otlp_endpoint=jaeger.otlp_endpoint)
