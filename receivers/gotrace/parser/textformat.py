"""Go's textual trace format (internal/trace/raw) → wire bytes.

Go keeps its trace test data (`src/internal/trace/testdata/tests/*.test`, txtar files)
as text: `Trace Go1.22` then one event per line, `Name arg=value ...`, stack frames on
indented `pc=… func=… file=… line=…` lines, string payloads on `data="…"` lines (a Go
quoted string). `go tool trace -d=wire` prints the same format. Encoding it back to bytes
lets the binary parser run on every trace Go itself tests against, for every version.
"""

from __future__ import annotations

import ast
import re

from .errors import TraceParseError
from .spec import VERSION_LAST_EVENT, Ev, name_to_type, spec_args

_FRAME_FIELDS = ("pc", "func", "file", "line")
_ARG = re.compile(r"(\w+)=(\d+)")


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _go_unquote(s: str) -> bytes:
    """Decode a Go double-quoted string literal (strconv.Quote output) to bytes."""
    # Go escapes are a subset of Python's bytes-literal escapes, except \u/\U (which
    # Python bytes literals lack): decode as str, then encode as UTF-8.
    try:
        value = ast.literal_eval(s)
    except (ValueError, SyntaxError) as e:
        raise TraceParseError(f"bad data literal {s!r}: {e}") from None
    if not isinstance(value, str):
        raise TraceParseError(f"bad data literal {s!r}")
    return value.encode("utf-8", "surrogateescape")


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0] if not raw.lstrip().startswith("data=") else raw
        if line.strip():
            out.append(line.strip())
    return out


def text_to_bytes(text: str) -> bytes:
    """Encode a text-format trace as the wire bytes the runtime would have written."""
    lines = _lines(text)
    if not lines:
        raise TraceParseError("empty text trace")
    head = lines[0].split()
    if len(head) != 2 or head[0] != "Trace" or not head[1].startswith("Go1."):
        raise TraceParseError(f"bad text trace header {lines[0]!r}")
    minor = int(head[1][4:])
    if minor not in VERSION_LAST_EVENT:
        raise TraceParseError(f"unsupported text trace version {head[1]}")
    names = name_to_type()
    out = bytearray(f"go 1.{minor} trace\x00\x00\x00".encode())
    i = 1
    while i < len(lines):
        line = lines[i]
        i += 1
        name, _, rest = line.partition(" ")
        typ = names.get(name)
        if typ is None or (typ > VERSION_LAST_EVENT[minor] and typ < 128):
            raise TraceParseError(f"unknown event {name!r} for Go1.{minor}")
        args = _ARG.findall(rest)
        want = spec_args(typ)
        if tuple(k for k, _ in args) != want:
            raise TraceParseError(f"{name}: expected args {want}, got {args}")
        out.append(typ)
        for _, v in args:
            out += _uvarint(int(v))
        if typ == Ev.STACK:
            for _ in range(int(args[1][1])):
                frame = _ARG.findall(lines[i])
                i += 1
                if tuple(k for k, _ in frame) != _FRAME_FIELDS:
                    raise TraceParseError(f"bad frame line {lines[i - 1]!r}")
                for _, v in frame:
                    out += _uvarint(int(v))
        if typ in (Ev.STRING, Ev.EXPERIMENTAL_BATCH):
            key, _, lit = lines[i].partition("=")
            i += 1
            if key.strip() != "data":
                raise TraceParseError(f"expected data line, got {lines[i - 1]!r}")
            data = _go_unquote(lit.strip())
            out += _uvarint(len(data))
            out += data
    return bytes(out)


def read_txtar(text: str) -> dict[str, str]:
    """Split a txtar archive into {file name: content}."""
    files: dict[str, str] = {}
    name = None
    buf: list[str] = []
    for line in text.splitlines(keepends=True):
        m = re.fullmatch(r"-- (.+?) --\n?", line)
        if m:
            if name is not None:
                files[name] = "".join(buf)
            name, buf = m.group(1), []
        elif name is not None:
            buf.append(line)
    if name is not None:
        files[name] = "".join(buf)
    return files
