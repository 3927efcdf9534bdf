"""Decode plain YAML data into config dataclasses, collecting every error with its key path.

Why a decoder of our own: the collector's rules (unknown keys rejected, durations as text,
errors naming `exporters.otlp_grpc/jaeger.retry_on_failure.max_interval`) are what users
expect, and they need the key path at every level.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin


class ConfigError(Exception):
    """Every problem found in one config, each `path: what was expected, got what`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def decode(cls: type, data: Any, path: str = "", problems: list[str] | None = None) -> Any:
    """Build `cls` (a dataclass) from `data`. Raises ConfigError unless `problems` is given,
    in which case problems are appended there and a best-effort value is returned."""
    own = problems is None
    problems = [] if own else problems
    value = _decode(cls, data, path, problems)
    if own and problems:
        raise ConfigError(problems)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _decode(tp: Any, data: Any, path: str, problems: list[str]) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if data is None:
            return None
        if len(args) == 1:
            return _decode(args[0], data, path, problems)
        sub: list[str] = []
        for a in args:
            sub = []
            v = _decode(a, data, path, sub)
            if not sub:
                return v
        problems.extend(sub)
        return None
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, path, problems)
    if origin is Literal:
        if data in get_args(tp):
            return data
        problems.append(f"{path}: expected {_describe(tp)}, got {data!r}")
        return get_args(tp)[0]
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        if data is None:
            return []
        if not isinstance(data, list):
            problems.append(f"{path}: expected a list, got {data!r}")
            return []
        return [_decode(item, v, f"{path}[{i}]", problems) for i, v in enumerate(data)]
    if origin is dict:
        _, val = get_args(tp) or (str, Any)
        if data is None:
            return {}
        if not isinstance(data, dict):
            problems.append(f"{path}: expected a mapping, got {data!r}")
            return {}
        return {str(k): _decode(val, v, _join(path, str(k)), problems) for k, v in data.items()}
    if tp is Any:
        return data
    parse = getattr(tp, "parse", None)
    if parse is not None:
        try:
            return parse(data)
        except ValueError as e:
            problems.append(f"{path}: {e}")
            return None
    if tp is bool:
        if isinstance(data, bool):
            return data
    elif tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
    elif tp is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
    elif tp is str:
        if isinstance(data, str):
            return data
        if isinstance(data, int | float) and not isinstance(data, bool):
            return str(data)
    else:
        return data
    problems.append(f"{path}: expected {_describe(tp)}, got {data!r}")
    return None


def _decode_dataclass(cls: Any, data: Any, path: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a mapping, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    before = len(problems)
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            problems.append(f"{_join(path, str(key))}: unknown key (known keys: {known})")
            continue
        kwargs[key] = _decode(hints[key], value, _join(path, key), problems)
    kwargs = {k: v for k, v in kwargs.items() if v is not None or _optional(hints[k])}
    obj = cls(**kwargs)
    if len(problems) == before and hasattr(obj, "validate"):
        for msg in obj.validate() or []:
            problems.append(_join(path, msg) if not msg.startswith(":") else f"{path}{msg}")
    return obj


def _optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)
