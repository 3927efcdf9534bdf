"""Struct field offsets from a Go binary's DWARF, indexing only the types asked for.

Probes read Go structs out of process memory (g.goid, recordingSpan.spanContext,
GoAwayFrame.ErrCode): their offsets move between Go and library releases, so
they are read from the binary's own DWARF. Walking every DIE of a large binary
with pyelftools takes tens of seconds; instead the (decompressed) .debug_info
is searched for the type's name string and only that DIE and its members are
parsed. Go writes DIE names as inline strings (DW_FORM_string) right after the
abbreviation code, so a match at byte p is a DIE starting at p-1; every
candidate is confirmed by parsing it. If the fast path finds nothing (another
producer, a multi-byte abbreviation code) one full walk builds an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .elfimage import ElfImage, GoBinaryError, guard

__all__ = ["DwarfTypes", "Field", "Param", "StructLayout"]

_DW_AT_GO_KIND = 0x2900
# reflect.Kind values Go writes in DW_AT_go_kind
_K_ARRAY, _K_CHAN, _K_FUNC, _K_IFACE, _K_MAP, _K_PTR, _K_SLICE, _K_STRING, _K_STRUCT = (
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    24,
    25,
)
_K_FLOATS = {13: "f", 14: "f", 15: "ff", 16: "ff"}  # float32/64, complex64/128
_DW_ATE_FLOAT, _DW_ATE_COMPLEX = 4, 3

_TYPE_TAGS = {
    "DW_TAG_structure_type",
    "DW_TAG_typedef",
    "DW_TAG_base_type",
    "DW_TAG_pointer_type",
    "DW_TAG_array_type",
    "DW_TAG_subroutine_type",
    "DW_TAG_interface_type",
    "DW_TAG_unspecified_type",
}


@dataclass(frozen=True)
class Field:
    """One struct member: byte offset from the struct start, size, Go type name."""

    name: str
    offset: int
    size: int | None
    type_name: str


@dataclass(frozen=True)
class StructLayout:
    """A struct type's size and members, in declaration order."""

    name: str
    size: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise GoBinaryError(f"struct {self.name} has no field {name!r}")

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)


def _name(die: Any) -> str | None:
    a = die.attributes.get("DW_AT_name")
    if a is None:
        return None
    v = a.value
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


def _member_offset(die: Any) -> int:
    a = die.attributes.get("DW_AT_data_member_location")
    if a is None:
        return 0
    if isinstance(a.value, int):
        return a.value
    # A location expression: Go only ever writes DW_OP_plus_uconst <n>.
    expr = list(a.value)
    if expr and expr[0] == 0x23:  # DW_OP_plus_uconst, ULEB128 operand
        value, shift = 0, 0
        for b in expr[1:]:
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value
    raise GoBinaryError(f"unsupported member location {a.value!r}")


@dataclass(frozen=True)
class Param:
    """A function parameter or result as DWARF declares it.

    `slots` is how Go's register ABI would split the value: one letter per
    register, 'i' integer, 'f' floating point ('' for zero-sized values), or
    None when it can only live on the stack (arrays longer than one element).
    """

    name: str
    type_name: str
    size: int | None
    is_result: bool
    slots: str | None


class DwarfTypes:
    """Lazy, cached lookup of Go struct layouts in one binary's DWARF."""

    def __init__(self, image: ElfImage, *, load: bool = True) -> None:
        self.path = image.path
        self._ptr_size = image.ptr_size
        self._dwarf: Any = None
        self._info = b""
        self._structs: dict[str, StructLayout | None] = {}
        self._full_index: dict[str, int] | None = None
        with guard(f"{image.path}: loading DWARF"):
            if load and ".debug_info" in image.sections and image.elf.has_dwarf_info():
                self._dwarf = image.elf.get_dwarf_info()
                self._info = self._dwarf.debug_info_sec.stream.getvalue()

    @property
    def available(self) -> bool:
        """False for stripped (`-w`) binaries: every lookup then returns None."""
        return self._dwarf is not None and bool(self._info)

    # -- public lookups ----------------------------------------------------

    def struct(self, name: str) -> StructLayout | None:
        """Layout of the struct type with this Go name (e.g. 'runtime.g'), None if absent."""
        if name in self._structs:
            return self._structs[name]
        layout = None
        if self.available:
            with guard(f"{self.path}: reading DWARF type {name}"):
                die = self._type_die(name)
                die = self._strip_typedefs(die) if die is not None else None
                if die is not None and die.tag == "DW_TAG_structure_type":
                    layout = self._layout(name, die)
        self._structs[name] = layout
        return layout

    def offset(self, type_name: str, field_path: str) -> int | None:
        """Byte offset of a (dotted) field path inside a struct, None if unknown.

        'spanContext.traceID' in 'go.opentelemetry.io/otel/sdk/trace.recordingSpan'
        adds the offsets through the embedded struct values; a path cannot go
        through a pointer (that needs a memory read, not an offset).
        """
        total = 0
        current = type_name
        parts = field_path.split(".")
        for i, part in enumerate(parts):
            layout = self.struct(current)
            if layout is None:
                return None
            if not layout.has(part):
                return None
            f = layout.field(part)
            total += f.offset
            if i + 1 < len(parts):
                if f.type_name.startswith("*"):
                    raise GoBinaryError(
                        f"{type_name}.{field_path}: {part} is a pointer ({f.type_name}); "
                        "offsets cannot follow it"
                    )
                current = f.type_name
        return total

    def offsets(self, type_name: str, *field_paths: str) -> dict[str, int | None]:
        """Several offsets of one type at once."""
        return {p: self.offset(type_name, p) for p in field_paths}

    def function_params(self, name: str) -> list[Param] | None:
        """Parameters then results of a function, in declaration order (receiver
        first), None when DWARF lacks the function."""
        if not self.available:
            return None
        with guard(f"{self.path}: reading DWARF function {name}"):
            die = self._subprogram_die(name)
            if die is None:
                return None
            out: list[Param] = []
            seen: set[tuple[str, bool]] = set()
            for child in die.iter_children():
                if child.tag != "DW_TAG_formal_parameter":
                    continue
                pname = _name(child) or ""
                var = child.attributes.get("DW_AT_variable_parameter")
                is_result = bool(var.value) if var is not None else False
                if (pname, is_result) in seen:
                    continue  # Go may repeat a result's DIE
                seen.add((pname, is_result))
                tname, tsize = self._type_name_size(child)
                t = child.get_DIE_from_attribute("DW_AT_type")
                out.append(Param(pname, tname, tsize, is_result, self._slots(t, 0)))
            return out

    # -- internals ---------------------------------------------------------

    def _subprogram_die(self, name: str) -> Any:
        needle = name.encode() + b"\x00"
        info = self._info
        pos = info.find(needle)
        while pos >= 0:
            if pos >= 1 and 0 < info[pos - 1] < 0x80:
                die = self._die_at(pos - 1)
                if die is not None and die.tag == "DW_TAG_subprogram" and _name(die) == name:
                    return die
            pos = info.find(needle, pos + 1)
        return None

    def _slots(self, die: Any, depth: int) -> str | None:
        """Register classes of a value of this type (Go ABIInternal), see Param."""
        if depth > 16:
            return None
        kind_attr = die.attributes.get(_DW_AT_GO_KIND)
        base = self._strip_typedefs(die)
        if kind_attr is None:
            kind_attr = base.attributes.get(_DW_AT_GO_KIND)
        kind = kind_attr.value if kind_attr is not None else None
        if kind in _K_FLOATS:
            return _K_FLOATS[kind]
        if kind == _K_STRING:
            return "ii"
        if kind == _K_SLICE:
            return "iii"
        if kind == _K_IFACE:
            return "ii"
        if kind in (_K_PTR, _K_MAP, _K_CHAN, _K_FUNC) or base.tag == "DW_TAG_pointer_type":
            return "i"
        if base.tag == "DW_TAG_base_type":
            enc = base.attributes.get("DW_AT_encoding")
            if enc is not None and enc.value == _DW_ATE_FLOAT:
                return "f"
            if enc is not None and enc.value == _DW_ATE_COMPLEX:
                return "ff"
            return "i"
        if base.tag == "DW_TAG_structure_type" or kind == _K_STRUCT:
            out = ""
            if base.has_children:
                for m in base.iter_children():
                    if m.tag != "DW_TAG_member" or "DW_AT_type" not in m.attributes:
                        continue
                    part = self._slots(m.get_DIE_from_attribute("DW_AT_type"), depth + 1)
                    if part is None:
                        return None
                    out += part
            return out
        if base.tag == "DW_TAG_array_type" or kind == _K_ARRAY:
            count = None
            if base.has_children:
                for sub in base.iter_children():
                    if sub.tag == "DW_TAG_subrange_type":
                        c = sub.attributes.get("DW_AT_count")
                        if c is not None:
                            count = c.value
                        elif "DW_AT_upper_bound" in sub.attributes:
                            count = sub.attributes["DW_AT_upper_bound"].value + 1
            if count == 0:
                return ""
            if count == 1 and "DW_AT_type" in base.attributes:
                return self._slots(base.get_DIE_from_attribute("DW_AT_type"), depth + 1)
            return None
        return None

    def _type_die(self, name: str) -> Any:
        needle = name.encode() + b"\x00"
        info = self._info
        pos = info.find(needle)
        candidates = []
        while pos >= 0:
            if pos >= 1 and 0 < info[pos - 1] < 0x80:
                candidates.append(pos - 1)
            pos = info.find(needle, pos + 1)
        if not candidates and not self._maybe_elsewhere(name):
            return None  # the name is nowhere in the DWARF: no need for a full walk
        found = [d for d in map(self._die_at, candidates) if d is not None]
        found = [d for d in found if d.tag in _TYPE_TAGS and _name(d) == name]
        # A struct's name also appears on its typedefs/pointers' DIEs: prefer the struct.
        found.sort(key=lambda d: d.tag != "DW_TAG_structure_type")
        return found[0] if found else self._slow_lookup(name)

    def _maybe_elsewhere(self, name: str) -> bool:
        """Could the name be stored out of line (DW_FORM_strp/strx in .debug_str)?"""
        strs = getattr(self._dwarf, "debug_str_sec", None)
        if strs is None:
            return False
        return name.encode() + b"\x00" in strs.stream.getvalue()

    def _die_at(self, off: int) -> Any:
        try:
            return self._dwarf.get_DIE_from_refaddr(off)
        except Exception:
            return None  # not a DIE boundary: a name string that only looks like one

    def _slow_lookup(self, name: str) -> Any:
        """Index every named type DIE once; only used when the fast path misses."""
        if self._full_index is None:
            idx: dict[str, int] = {}
            for cu in self._dwarf.iter_CUs():
                for die in cu.get_top_DIE().iter_children():
                    if die.tag in _TYPE_TAGS:
                        n = _name(die)
                        if n is not None:
                            prev = idx.get(n)
                            if prev is None or die.tag == "DW_TAG_structure_type":
                                idx[n] = die.offset
            self._full_index = idx
        off = self._full_index.get(name)
        return self._dwarf.get_DIE_from_refaddr(off) if off is not None else None

    @staticmethod
    def _strip_typedefs(die: Any) -> Any:
        for _ in range(16):
            if die.tag != "DW_TAG_typedef" or "DW_AT_type" not in die.attributes:
                return die
            die = die.get_DIE_from_attribute("DW_AT_type")
        return die

    def _type_name_size(self, die: Any) -> tuple[str, int | None]:
        if "DW_AT_type" not in die.attributes:
            return "", None
        t = die.get_DIE_from_attribute("DW_AT_type")
        tname = _name(t) or ""
        size_attr = t.attributes.get("DW_AT_byte_size")
        if size_attr is None:
            base = self._strip_typedefs(t)
            if base.tag == "DW_TAG_pointer_type":
                return tname, self._ptr_size  # Go writes no byte size on pointer types
            size_attr = base.attributes.get("DW_AT_byte_size")
        return tname, size_attr.value if size_attr is not None else None

    def _layout(self, name: str, die: Any) -> StructLayout:
        size_attr = die.attributes.get("DW_AT_byte_size")
        fields = []
        if die.has_children:
            for child in die.iter_children():
                if child.tag != "DW_TAG_member":
                    continue
                tname, tsize = self._type_name_size(child)
                fields.append(Field(_name(child) or "", _member_offset(child), tsize, tname))
        return StructLayout(name, size_attr.value if size_attr is not None else 0, tuple(fields))
