"""Read `collector-config.yaml`: YAML, `${env:VAR}` / `${env:VAR:-default}` / `$$`, then
the top-level shape (receivers, processors, exporters, extensions, service).

Several files merge in order, as the collector's `--config a.yaml --config b.yaml` does:
mappings merge key by key, anything else (a list, a scalar) is replaced by the later file.
That lets an overlay add one exporter to a pipeline without copying the whole config."""

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
    return load_files([path], env)


def load_files(paths: list[str | Path], env: dict[str, str] | None = None) -> RawConfig:
    """The files merged in order (later wins), then checked as one config."""
    merged: dict[str, Any] = {}
    for path in paths:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError([f"{p}: cannot read the config file: {e.strerror}"]) from e
        merged = merge(merged, _parse(text, str(p)))
    return _raw(merged, " + ".join(str(p) for p in paths), env)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_text(text: str, source: str = "<config>", env: dict[str, str] | None = None) -> RawConfig:
    return _raw(_parse(text, source), source, env)


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{source}: not valid YAML: {e}"]) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        got = type(data).__name__
        raise ConfigError([f"{source}: expected a mapping at the top level, got {got}"])
    return data


def _raw(data: dict[str, Any], source: str, env: dict[str, str] | None) -> RawConfig:
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
