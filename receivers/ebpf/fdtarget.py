"""What a file descriptor of a target process refers to, in words a span can carry.

`tcp 127.0.0.1:40312->127.0.0.1:5432` for sockets (the endpoints BPF read from the
socket's struct sock; without BTF for that, the 4-tuple from /proc/<pid>/net/tcp{,6}
matched by the socket inode that /proc/<pid>/fd/<n> names), a path for files,
`pipe:[ino]` / `anon_inode:[eventpoll]` as the kernel names the rest.  The BPF side
records the file's identity (mode, inode, dentry name) at sys_exit, while the syscall still
holds the fd; naming happens here, when the episode is decoded — possibly after the app
closed the fd, which the identity survives.  A socket's name is cached by its identity
(the endpoint bytes BPF read, and the inode), across drains: the same bytes always read
the same.  Other answers, which look at /proc, are cached within one drained batch.
"""

from __future__ import annotations

import os
import socket
import struct

_NET_TABLES = (
    ("tcp", "tcp", socket.AF_INET),
    ("tcp6", "tcp", socket.AF_INET6),
    ("udp", "udp", socket.AF_INET),
    ("udp6", "udp", socket.AF_INET6),
)


def _hex_addr(text: str, family: int) -> str:
    """/proc/net/tcp's address field ("0100007F:1538") → "127.0.0.1:5432"."""
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    # IPv4: one little-endian word; IPv6: four of them
    raw = raw[::-1] if family == socket.AF_INET else struct.pack(">4I", *struct.unpack("<4I", raw))
    return f"{_ip(family, raw)}:{int(port_hex, 16)}"


def read_socket_table(pid: int) -> dict[int, str]:
    """Socket inode → "tcp local->remote" for the network namespace of `pid`."""
    out: dict[int, str] = {}
    for fname, proto, family in _NET_TABLES:
        try:
            with open(f"/proc/{pid}/net/{fname}") as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 10:
                        continue
                    inode = int(parts[9])
                    if inode:
                        local = _hex_addr(parts[1], family)
                        remote = _hex_addr(parts[2], family)
                        out[inode] = f"{proto} {local}->{remote}"
        except OSError:
            continue
    return out


S_IFMT, S_IFIFO, S_IFSOCK, S_IFREG = 0o170000, 0o010000, 0o140000, 0o100000
# bpf/goblock.h struct fd_sockaddr: a socket's endpoints in fd_name
FD_SOCKADDR = b"\x01"
_SOCKADDR = struct.Struct("<BBHHH16s16s")
_PROTOCOLS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}


def sockaddr_text(raw: bytes) -> str:
    """fd_name of a socket → "tcp 127.0.0.1:40312->127.0.0.1:5432" (the /proc/net form), or
    "" for a socket that is not TCP/UDP over IPv4/IPv6 (unix, netlink, ...)."""
    if len(raw) < _SOCKADDR.size:
        return ""
    _tag, proto, family, sport, dport, saddr, daddr = _SOCKADDR.unpack_from(raw)
    pair = _PAIRS.get((proto, family, saddr, daddr))
    if pair is None:
        pair = _pair_format(proto, family, saddr, daddr)
    return pair % (sport, dport) if pair else ""


# A host talks to few addresses, on many ports: one "%d" format per (protocol, address
# pair), so naming a new connection's socket is one lookup and one format (most sockets
# are seen once or twice: a connection per request)
_PAIRS: dict[tuple[int, int, bytes, bytes], str] = {}


def _pair_format(proto: int, family: int, saddr: bytes, daddr: bytes) -> str:
    kind = _PROTOCOLS.get(proto)
    if kind is None or family not in (socket.AF_INET, socket.AF_INET6):
        return ""
    n = 4 if family == socket.AF_INET else 16
    src, dst = (_ip(family, a[:n]).replace("%", "%%") for a in (saddr, daddr))
    if len(_PAIRS) >= 4096:
        _PAIRS.clear()
    fmt = _PAIRS[(proto, family, saddr, daddr)] = f"{kind} {src}:%d->{dst}:%d"
    return fmt


def _ip(family: int, raw: bytes) -> str:
    host = socket.inet_ntop(family, raw)
    if family == socket.AF_INET:
        return host
    return host[7:] if host.startswith("::ffff:") and "." in host else f"[{host}]"


KERNEL_IDENTITY = 0x10000  # bit set by bpf/goblock.h fd_identity: mode/ino/name are valid


class FdResolver:
    """fd → target text.  With the kernel's identity of the file (mode, inode, dentry name
    read while the syscall held the fd) the answer does not depend on the fd still being
    open: pipes and sockets are named by inode, regular files by the path /proc shows while
    the fd still names the same inode, else a path seen before for that inode, else the
    basename.  Without it (no BTF), /proc/<pid>/fd is all there is.

    `proc_fallback=False` when the BPF side reads identities (it has the BTF offsets): a
    record without one then names an fd that was not open at the syscall's exit (close,
    a bad fd) — /proc would name whatever reuses the number by now, and for a socket it
    meant reading the whole /proc/<pid>/net/tcp table (with thousands of TIME_WAIT
    entries under connection churn: ~100 ms of CPU each, most of the agent's)."""

    def __init__(self, max_entries: int = 16384, proc_fallback: bool = True) -> None:
        self._max = max_entries
        self._proc_fallback = proc_fallback
        self._cache: dict[tuple[int, int, int], str] = {}
        self._socknames: dict[tuple[int, bytes], str] = {}  # (inode, endpoint bytes) → text
        self._sockets: dict[int, str] = {}
        self._paths: dict[int, str] = {}  # inode → path, for files closed before decode

    def new_batch(self) -> None:
        """Forget fd → target answers: the next records may be after a close and reuse."""
        self._cache.clear()

    def resolve(self, pid: int, fd: int, mode: int = 0, ino: int = 0, name: bytes = b"") -> str:
        """The fd's target, or "" when it cannot be known."""
        if mode & KERNEL_IDENTITY and name[:1] == FD_SOCKADDR and mode & S_IFMT == S_IFSOCK:
            sk = (ino, name)
            text = self._socknames.get(sk)
            if text is None:
                if len(self._socknames) >= self._max:
                    self._socknames.clear()
                text = self._socknames[sk] = sockaddr_text(name) or f"socket:[{ino}]"
            return text
        key = (pid, fd, ino)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if mode & KERNEL_IDENTITY:
            text = self._from_identity(pid, fd, mode & S_IFMT, ino, name)
        elif self._proc_fallback:
            text = self._from_proc(pid, fd)
        else:
            text = ""
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[key] = text
        return text

    def _socket(self, pid: int, inode: int) -> str | None:
        text = self._sockets.get(inode)
        if text is None:
            self._sockets = read_socket_table(pid)
            text = self._sockets.get(inode)
        return text

    def _from_identity(self, pid: int, fd: int, typ: int, ino: int, name: bytes) -> str:
        if typ == S_IFIFO:
            return f"pipe:[{ino}]"
        if typ == S_IFSOCK:
            if name[:1] == FD_SOCKADDR:
                return sockaddr_text(name) or f"socket:[{ino}]"
            return self._socket(pid, ino) or f"socket:[{ino}]"
        path = ""
        try:
            if os.stat(f"/proc/{pid}/fd/{fd}").st_ino == ino:
                path = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
        if path:
            if typ == S_IFREG:
                if len(self._paths) >= self._max:
                    self._paths.clear()
                self._paths[ino] = path
            return path
        if ino in self._paths:
            return self._paths[ino]
        base = name.split(b"\0", 1)[0].decode(errors="replace")
        return f"anon_inode:{base}" if typ == 0 else base

    def _from_proc(self, pid: int, fd: int) -> str:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            return ""
        if link.startswith("socket:["):
            link = self._socket(pid, int(link[8:-1])) or link
        return link

    def forget_pid(self, pid: int) -> None:
        for key in [k for k in self._cache if k[0] == pid]:
            del self._cache[key]
