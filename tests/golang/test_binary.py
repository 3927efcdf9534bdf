"""GoBinary facade: caching by file identity, registers, probe points."""

from __future__ import annotations

import os
import shutil

from otel_goblock.golang import REGISTERS, GoBinary, clear_cache, open_go_binary

from .conftest import Built


def test_cache_hits_and_invalidation(tmp_path, basic_stripped: Built, basic_dwarf: Built) -> None:
    clear_cache()
    p = tmp_path / "svc"
    shutil.copy(basic_stripped.path, p)
    a = open_go_binary(str(p))
    assert open_go_binary(str(p)) is a
    link = tmp_path / "exe"
    link.symlink_to(p)  # /proc/<pid>/exe style path resolves to the same entry
    assert open_go_binary(str(link)) is a
    shutil.copy(basic_dwarf.path, p)  # rebuilt in place
    b = open_go_binary(str(p))
    assert b is not a and b.symbols.source == "symtab"
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert open_go_binary(str(p)) is not b


def test_facade(otel_dwarf: Built) -> None:
    gb = GoBinary(str(otel_dwarf.path))
    assert gb.arch == "amd64" and gb.registers is REGISTERS["amd64"]
    assert gb.registers.g == "r14" and gb.registers.args[:3] == ("ax", "bx", "cx")
    assert REGISTERS["arm64"].g == "regs[28]" and len(REGISTERS["arm64"].args) == 16
    assert gb.module_version("go.opentelemetry.io/otel/sdk") == "v1.47.0"
    assert not gb.stripped and gb.build_id
    entry = gb.entry_probe("runtime.gopark")
    assert entry.kind == "entry" and entry.vaddr == gb.function("runtime.gopark").entry
    rets = gb.ret_probes("go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End")
    assert rets and all(r.kind == "ret" for r in rets)
    assert gb.field_offset("runtime.g", "goid") == gb.runtime_layout["g.goid"]
    assert gb.wait_reasons.source == "symtab"
