"""Build small wire-format traces by hand, for semantic edge cases no Go program produces
on demand (clock inversions across threads, parks spanning generations, …).

Events are given as `(name, {arg: value})` with Go's event and argument names; `dt` is in
trace ticks (the builder's frequency is 1 GHz unless told: 1 tick = 1 ns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from otel_goblock.receivers.gotrace.parser.spec import Ev, name_to_type, spec_args
from otel_goblock.receivers.gotrace.parser.wire import NO_THREAD

_TYPES = name_to_type()


def uvarint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def event(name: str, **args: int) -> bytes:
    typ = _TYPES[name]
    want = spec_args(typ)
    assert set(args) == set(want), (name, want)
    return bytes([typ]) + b"".join(uvarint(args[a]) for a in want)


def _batch(gen: int, m: int, time: int, payload: bytes) -> bytes:
    return (
        bytes([Ev.EVENT_BATCH])
        + uvarint(gen)
        + uvarint(m)
        + uvarint(time)
        + uvarint(len(payload))
        + payload
    )


@dataclass
class Gen:
    n: int
    freq: int = 1_000_000_000
    wall_ns: int = 1_700_000_000_000_000_000  # ClockSnapshot wall time (Go 1.25+)
    strings: dict[str, int] = field(default_factory=dict)
    batches: list[tuple[int, int, list[tuple[str, dict]]]] = field(default_factory=list)

    def s(self, text: str) -> int:
        """The string id of `text` in this generation."""
        return self.strings.setdefault(text, len(self.strings) + 1)

    def batch(self, m: int, time: int, *events: tuple[str, dict]) -> None:
        self.batches.append((m, time, list(events)))


def build(version: int, *gens: Gen) -> bytes:
    out = bytearray(f"go 1.{version} trace\x00\x00\x00".encode())
    for g in gens:
        if version >= 25:
            sync = (
                bytes([Ev.SYNC])
                + event("Frequency", freq=g.freq)
                + event(
                    "ClockSnapshot", dt=0, mono=0, sec=g.wall_ns // 10**9, nsec=g.wall_ns % 10**9
                )
            )
        else:
            sync = event("Frequency", freq=g.freq)
        out += _batch(g.n, NO_THREAD, 0, sync)
        for m, time, events in g.batches:
            out += _batch(g.n, m, time, b"".join(event(n, **a) for n, a in events))
        strings = bytes([Ev.STRINGS]) + b"".join(
            bytes([Ev.STRING]) + uvarint(i) + uvarint(len(t.encode())) + t.encode()
            for t, i in g.strings.items()
        )
        out += _batch(g.n, NO_THREAD, 0, strings)
        out += _batch(g.n, NO_THREAD, 0, bytes([Ev.STACKS]))
        if version >= 26:
            out.append(Ev.END_OF_GENERATION)
    return bytes(out)


def ev(name: str, **args: int) -> tuple[str, dict]:
    return (name, args)
