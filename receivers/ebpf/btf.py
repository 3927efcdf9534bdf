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
    """The type table of one BTF blob, indexed for member-offset lookups."""

    def __init__(self, data: bytes) -> None:
        magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != 0xEB9F:
            raise BTFError("not BTF (bad magic)")
        type_off, type_len, str_off, _str_len = struct.unpack_from("<IIII", data, 8)
        self._strs = data[hdr_len + str_off :]
        self._types = data[hdr_len + type_off : hdr_len + type_off + type_len]
        # one pass recording where each type's record starts; names and members are decoded
        # only for the few types a lookup touches (vmlinux has ~100k types)
        self._pos: list[int] = [0]
        self.by_name: dict[str, list[int]] = {}
        want = {4, 5}  # struct, union
        types, unpack = self._types, struct.unpack_from
        extra = {1: 4, 3: 12, 14: 4, 17: 4}
        per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
        pos, n = 0, len(types)
        while pos < n:
            name_off, info = unpack("<II", types, pos)
            self._pos.append(pos)
            kind = (info >> 24) & 0x1F
            if kind in want and name_off:
                self.by_name.setdefault(self._str(name_off), []).append(len(self._pos) - 1)
            pos += 12 + extra.get(kind, 0) + per_member.get(kind, 0) * (info & 0xFFFF)

    def _type(self, tid: int) -> tuple[int, str, int, list[tuple[str, int, int]]]:
        """(kind, name, size_or_type, members) of type `tid`."""
        pos = self._pos[tid]
        name_off, info, size_type = struct.unpack_from("<III", self._types, pos)
        kind = (info >> 24) & 0x1F
        members: list[tuple[str, int, int]] = []
        if kind in (_KIND_STRUCT, _KIND_UNION):
            kflag = info >> 31
            mpos = pos + 12
            for _ in range(info & 0xFFFF):
                m_name, m_type, m_off = struct.unpack_from("<III", self._types, mpos)
                mpos += 12
                members.append((self._str(m_name), m_type, m_off & 0xFFFFFF if kflag else m_off))
        return kind, self._str(name_off), size_type, members

    def _str(self, off: int) -> str:
        end = self._strs.index(b"\0", off)
        return self._strs[off:end].decode()

    def _resolve(self, tid: int) -> int:
        """Skip typedefs and qualifiers to the struct/union they name."""
        while True:
            kind, _n, size_type, _m = self._type(tid)
            if kind in (_KIND_TYPEDEF, _KIND_VOLATILE, _KIND_CONST, _KIND_RESTRICT, _KIND_TYPE_TAG):
                tid = size_type
            else:
                return tid

    def _member_offset(self, tid: int, name: str) -> tuple[int, int] | None:
        """(byte offset, member type id) of `name`, looking inside anonymous members."""
        _kind, _n, _s, members = self._type(self._resolve(tid))
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
            kind, _n, _s, members = self._type(tid)
            if kind != _KIND_STRUCT or not members:
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


FD_WALK = (
    ("GOBLOCK_OFF_TASK_FILES", "task_struct", "files"),
    ("GOBLOCK_OFF_FILES_FDT", "files_struct", "fdt"),
    ("GOBLOCK_OFF_FDT_FD", "fdtable", "fd"),
    ("GOBLOCK_OFF_FDT_MAX", "fdtable", "max_fds"),
    ("GOBLOCK_OFF_FILE_INODE", "file", "f_inode"),
    ("GOBLOCK_OFF_FILE_DENTRY", "file", "f_path.dentry"),
    ("GOBLOCK_OFF_INODE_INO", "inode", "i_ino"),
    ("GOBLOCK_OFF_INODE_MODE", "inode", "i_mode"),
    ("GOBLOCK_OFF_DENTRY_NAME", "dentry", "d_name.name"),
)
# sockets: their endpoints (bpf/goblock.h fd_sockaddr); without them sockets are named
# from /proc/<pid>/net/{tcp,udp}{,6}
SOCK_WALK = (
    ("GOBLOCK_OFF_FILE_PRIVATE", "file", "private_data"),
    ("GOBLOCK_OFF_SOCKET_SK", "socket", "sk"),
    ("GOBLOCK_OFF_SK_PROTOCOL", "sock", "sk_protocol"),
    ("GOBLOCK_OFF_SKC_FAMILY", "sock", "__sk_common.skc_family"),
    ("GOBLOCK_OFF_SKC_NUM", "sock", "__sk_common.skc_num"),
    ("GOBLOCK_OFF_SKC_DPORT", "sock", "__sk_common.skc_dport"),
    ("GOBLOCK_OFF_SKC_RCV_SADDR", "sock", "__sk_common.skc_rcv_saddr"),
    ("GOBLOCK_OFF_SKC_DADDR", "sock", "__sk_common.skc_daddr"),
    ("GOBLOCK_OFF_SKC_V6_RCV_SADDR", "sock", "__sk_common.skc_v6_rcv_saddr"),
    ("GOBLOCK_OFF_SKC_V6_DADDR", "sock", "__sk_common.skc_v6_daddr"),
)


def fd_walk_offsets() -> tuple[tuple[str, int], ...]:
    """Offsets for the BPF fd → file → inode/dentry walk (bpf/goblock.h fd_identity), and
    the socket → endpoints one when this kernel's BTF has every field of it."""
    b = vmlinux()
    walk = tuple((name, b.offset_of(s, path)) for name, s, path in FD_WALK)
    try:
        return walk + tuple((name, b.offset_of(s, path)) for name, s, path in SOCK_WALK)
    except BTFError:
        return walk


def task_fsbase_offset() -> int:
    """task_struct.thread.fsbase: where a Go thread's TLS base (g at FS-8) lives."""
    return vmlinux().offset_of("task_struct", "thread.fsbase")
