"""Read `collector-config.yaml`: YAML, `${env:VAR}` / `${env:VAR:-default}` / `$$`, then
the top-level shape (receivers, processors, exporters, extensions, service)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from otel_goblock.config.decode import ConfigError

_ENV_RE = re.compile(r"\$\$|\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
TOP_KEYS = ("receivers", "processors", "exporters", "extensions", "connectors", "service")


def expand_env(value: Any, env: dict[str, str] | None = None) -> Any:
    """Expand environment references in every string of a YAML tree.

    A string that is exactly one reference takes the YAML type of the value (so
    `${env:PORT}` can be an integer), as in the collector.
    """
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(2) if m.group(2) is not None else "")

    full = _ENV_RE.fullmatch(value)
    out = _ENV_RE.sub(sub, value)
    if full and full.group(0) != "$$":
        try:
            typed = yaml.safe_load(out)
        except yaml.YAMLError:
            return out
        return typed if isinstance(typed, int | float | bool) else out
    return out


@dataclass
class RawConfig:
    """The file after YAML and env expansion, before components decode their parts."""

    receivers: dict[str, Any] = field(default_factory=dict)
    processors: dict[str, Any] = field(default_factory=dict)
    exporters: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def load_file(path: str | Path, env: dict[str, str] | None = None) -> RawConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError([f"{p}: cannot read the config file: {e.strerror}"]) from e
    return load_text(text, source=str(p), env=env)


def load_text(text: str, source: str = "<config>", env: dict[str, str] | None = None) -> RawConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{source}: not valid YAML: {e}"]) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([f"{source}: expected a mapping at the top level, got {got}"])
    problems = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"{key}: unknown key (known keys: {', '.join(TOP_KEYS)})")
    data = expand_env(data, env)
    parts: dict[str, dict[str, Any]] = {}
    for key in ("receivers", "processors", "exporters", "extensions", "service"):
        v = data.get(key)
        if v is None:
            v = {}
        if not isinstance(v, dict):
            problems.append(f"{key}: expected a mapping, got {v!r}")
            v = {}
        parts[key] = v
    if problems:
        raise ConfigError(problems)
    return RawConfig(source=source, **parts)
