"""Kernel struct member offsets from BTF (/sys/kernel/btf/vmlinux).

Why: the kernel headers BCC compiles against come from Debian's linux-headers package, not
from this kernel (DESIGN §4), so a struct layout taken from them can be wrong.  The running
kernel describes its own layout in BTF; we read the few offsets we need from it at start-up
and pass them to the BPF programs as constants.  The reader is small on purpose: it walks
the type section once and understands only what member lookup needs (structs, unions,
typedefs, qualifiers).
"""

from __future__ import annotations

import struct
from functools import lru_cache

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"

_KIND_INT, _KIND_PTR, _KIND_ARRAY, _KIND_STRUCT, _KIND_UNION, _KIND_ENUM = 1, 2, 3, 4, 5, 6
_KIND_FWD, _KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT = 7, 8, 9, 10, 11
_KIND_FUNC, _KIND_FUNC_PROTO, _KIND_VAR, _KIND_DATASEC, _KIND_FLOAT = 12, 13, 14, 15, 16
_KIND_DECL_TAG, _KIND_TYPE_TAG, _KIND_ENUM64 = 17, 18, 19


class BTFError(Exception):
    pass


class BTF:
    """Parsed type table: id → (kind, name, size_or_type, members)."""

    def __init__(self, data: bytes) -> None:
        magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != 0xEB9F:
            raise BTFError("not BTF (bad magic)")
        type_off, type_len, str_off, _str_len = struct.unpack_from("<IIII", data, 8)
        self._strs = data[hdr_len + str_off :]
        types = data[hdr_len + type_off : hdr_len + type_off + type_len]
        self.types: list[tuple[int, str, int, list[tuple[str, int, int]]]] = [(0, "", 0, [])]
        self.by_name: dict[str, list[int]] = {}
        pos = 0
        while pos < len(types):
            name_off, info, size_type = struct.unpack_from("<III", types, pos)
            pos += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            kflag = info >> 31
            members: list[tuple[str, int, int]] = []
            if kind == _KIND_INT:
                pos += 4
            elif kind == _KIND_ARRAY:
                pos += 12
            elif kind in (_KIND_STRUCT, _KIND_UNION):
                for _ in range(vlen):
                    m_name, m_type, m_off = struct.unpack_from("<III", types, pos)
                    pos += 12
                    bit_off = m_off & 0xFFFFFF if kflag else m_off
                    members.append((self._str(m_name), m_type, bit_off))
            elif kind == _KIND_ENUM:
                pos += 8 * vlen
            elif kind == _KIND_FUNC_PROTO:
                pos += 8 * vlen
            elif kind == _KIND_VAR:
                pos += 4
            elif kind == _KIND_DATASEC:
                pos += 12 * vlen
            elif kind == _KIND_DECL_TAG:
                pos += 4
            elif kind == _KIND_ENUM64:
                pos += 12 * vlen
            name = self._str(name_off)
            self.types.append((kind, name, size_type, members))
            if name and kind in (_KIND_STRUCT, _KIND_UNION):
                self.by_name.setdefault(name, []).append(len(self.types) - 1)

    def _str(self, off: int) -> str:
        end = self._strs.index(b"\0", off)
        return self._strs[off:end].decode()

    def _resolve(self, tid: int) -> int:
        """Skip typedefs and qualifiers to the struct/union they name."""
        while True:
            kind, _n, size_type, _m = self.types[tid]
            if kind in (_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT, _KIND_TYPE_TAG):
                tid = size_type
            else:
                return tid

    def _member_offset(self, tid: int, name: str) -> tuple[int, int] | None:
        """(byte offset, member type id) of `name`, looking inside anonymous members."""
        _kind, _n, _s, members = self.types[self._resolve(tid)]
        for m_name, m_type, bit_off in members:
            if m_name == name:
                return bit_off // 8, m_type
            if not m_name:
                inner = self._member_offset(m_type, name)
                if inner is not None:
                    return bit_off // 8 + inner[0], inner[1]
        return None

    def offset_of(self, struct_name: str, path: str) -> int:
        """Byte offset of a dotted member path, e.g. offset_of("task_struct", "thread.fsbase")."""
        ids = self.by_name.get(struct_name)
        if not ids:
            raise BTFError(f"struct {struct_name} not in BTF")
        for tid in ids:
            if self.types[tid][0] != _KIND_STRUCT or not self.types[tid][3]:
                continue
            total, cur, ok = 0, tid, True
            for part in path.split("."):
                found = self._member_offset(cur, part)
                if found is None:
                    ok = False
                    break
                total += found[0]
                cur = found[1]
            if ok:
                return total
        raise BTFError(f"{struct_name}.{path} not in BTF")


@lru_cache(maxsize=1)
def vmlinux() -> BTF:
    with open(VMLINUX_BTF, "rb") as f:
        return BTF(f.read())


def task_fsbase_offset() -> int:
    """task_struct.thread.fsbase: where a Go thread's TLS base (g at FS−8) lives."""
    return vmlinux().offset_of("task_struct", "thread.fsbase")
