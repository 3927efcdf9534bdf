"""The parser's event table is Go's: re-read from the Go source of each toolchain here.

Checks numbering (the `const` iota block), argument lists (the `specs` table), and the
per-version cut-offs (`version.go`) of Go 1.26's and Go 1.27.3's `internal/trace`.
"""

from __future__ import annotations

import re

import pytest
from gotrace_fixtures import TOOLCHAINS, goroot
from otel_goblock.receivers.gotrace.parser.spec import (
    _EXPERIMENTAL,
    _SPECS,
    VERSION_LAST_EVENT,
    Ev,
)


def _go_tables(toolchain: str) -> tuple[list[str], dict[str, list[str]], dict[int, str]]:
    root = goroot(toolchain) / "src/internal/trace"
    src = (root / "tracev2/events.go").read_text()
    block = src.split("EvNone EventType = iota", 1)[1].split("NumEvents", 1)[0]
    names = ["None", *re.findall(r"^\s*Ev(\w+)\b", block, re.M)]
    specs = {}
    for m in re.finditer(r"\bEv(\w+): \{\s*Name:\s*\"(\w+)\",(.*?)\n\t\},", src, re.S):
        args = re.search(r"Args:\s*\[\]string\{([^}]*)\}", m.group(3))
        specs[m.group(2)] = re.findall(r"\"(\w+)\"", args.group(1)) if args else []
    vsrc = (root / "version/version.go").read_text()
    cuts = {
        int(v): ev
        for v, ev in re.findall(r"Go1(\d+): tracev2\.Specs\(\)\[:tracev2\.Ev(\w+)\+1\]", vsrc)
    }
    last = re.search(r"Go1(\d+): tracev2\.Specs\(\),", vsrc)
    cuts[int(last.group(1))] = names[-1]
    return names, specs, cuts


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_event_numbering_and_args_match_go_source(toolchain: str) -> None:
    names, specs, cuts = _go_tables(toolchain)
    assert len(names) == len(Ev)
    for typ, name in enumerate(names):
        assert _SPECS.get(typ, ("None",))[0] == name, typ
    for name, args, _ in (_SPECS | _EXPERIMENTAL).values():
        assert specs[name] == list(args), name
    assert {v: names[VERSION_LAST_EVENT[v]] for v in VERSION_LAST_EVENT} == cuts
