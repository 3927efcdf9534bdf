"""Go binary introspection for uprobes: build info, symbols, DWARF layouts,
RET offsets, wait-reason strings and runtime offsets (pure Python: pyelftools
and capstone). Entry point: :func:`open_go_binary`.
"""

from .abi import ArgLocation, assign_registers
from .binary import REGISTERS, GoBinary, ProbePoint, Registers, clear_cache, open_go_binary
from .buildinfo import BuildInfo, Module, parse_go_version, read_buildinfo
from .dwarf import DwarfTypes, Field, Param, StructLayout
from .elfimage import ElfImage, GoBinaryError
from .offsets import RUNTIME_OFFSETS, RuntimeLayout, runtime_layout, table_offsets
from .symbols import Function, SymbolTable, read_pclntab, read_symtab
from .waitreasons import WAIT_REASON_TABLES, WaitReasons, table_for_version

__all__ = [
    "REGISTERS",
    "RUNTIME_OFFSETS",
    "WAIT_REASON_TABLES",
    "ArgLocation",
    "BuildInfo",
    "DwarfTypes",
    "ElfImage",
    "Field",
    "Function",
    "GoBinary",
    "GoBinaryError",
    "Module",
    "Param",
    "ProbePoint",
    "Registers",
    "RuntimeLayout",
    "StructLayout",
    "SymbolTable",
    "WaitReasons",
    "assign_registers",
    "clear_cache",
    "open_go_binary",
    "parse_go_version",
    "read_buildinfo",
    "read_pclntab",
    "read_symtab",
    "runtime_layout",
    "table_for_version",
    "table_offsets",
]
