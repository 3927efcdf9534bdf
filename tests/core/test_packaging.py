"""The distribution must ship every package: component folders are mapped into the
otel_goblock namespace, and setuptools only installs the packages pyproject lists."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {
    "otel_goblock": "otel_goblock",
    "receivers": "otel_goblock.receivers",
    "processors": "otel_goblock.processors",
    "exporters": "otel_goblock.exporters",
}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for top, dotted in MAPPED.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            if "testdata" in rel.parts:
                continue
            found.add(".".join([dotted, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_component_registry_imports_every_factory() -> None:
    from otel_goblock.component import default_registry

    types = {(f.kind, f.type) for f in default_registry().factories()}
    assert ("processor", "batch") in types
    assert ("processor", "memory_limiter") in types
    assert ("extension", "health_check") in types
