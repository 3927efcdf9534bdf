"""Scalar types a config may hold, each parsed from the text a collector user writes."""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h)\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(float):
    """Seconds, written as Go durations: "200ms", "5s", "1m30s" (0 alone is allowed)."""

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
            return cls(0.0)
        if isinstance(value, str):
            text = value.strip()
            if text == "0":
                return cls(0.0)
            total, pos, ok = 0.0, 0, bool(text)
            for m in re.finditer(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text):
                if m.start() != pos:
                    ok = False
                    break
                total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos = m.end()
            if ok and pos == len(text):
                return cls(total)
        raise ValueError(f'expected a duration like "30s" or "200ms", got {value!r}')

    def __str__(self) -> str:
        if self >= 1 or self == 0:
            return f"{float(self):g}s"
        return f"{float(self) * 1e3:g}ms"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
}


class ByteSize(int):
    """Bytes, as an integer or text like "64MiB"."""

    @classmethod
    def parse(cls, value: object) -> ByteSize:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(value)
        if isinstance(value, str):
            m = _SIZE_RE.match(value)
            if m and (m.group(2) or "").lower() in _SIZE_UNITS:
                return cls(int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()]))
        raise ValueError(f'expected a size in bytes like 1048576 or "64MiB", got {value!r}')


class Endpoint(str):
    """host:port (an empty host is refused: defaults bind to localhost, never to all)."""

    @classmethod
    def parse(cls, value: object) -> Endpoint:
        if isinstance(value, str):
            host, sep, port = value.rpartition(":")
            if sep and host and port.isdigit() and 0 <= int(port) <= 65535:
                return cls(value)
        raise ValueError(f'expected host:port like "localhost:4317", got {value!r}')

    @property
    def host(self) -> str:
        return self.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.rpartition(":")[2])
