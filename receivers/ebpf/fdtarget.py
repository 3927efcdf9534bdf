"""What a file descriptor of a target process refers to, in words a span can carry.

`tcp 127.0.0.1:40312->127.0.0.1:5432` for sockets (4-tuple from /proc/<pid>/net/tcp{,6},
matched by the socket inode that /proc/<pid>/fd/<n> names), a path for files,
`pipe:[ino]` / `anon_inode:[eventpoll]` as the kernel names the rest.  Resolution happens
in user space when the syscall episode is decoded (the fd is usually still open then);
results are cached per (pid, fd) for `ttl_s` because an fd number can be reused after close.
"""

from __future__ import annotations

import os
import socket
import struct
import time

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
    if family == socket.AF_INET:
        host = socket.inet_ntop(family, raw[::-1])
    else:
        # four little-endian 32-bit words
        words = struct.unpack("<4I", raw)
        raw6 = struct.pack(">4I", *words)
        host = socket.inet_ntop(family, raw6)
        host = host[7:] if host.startswith("::ffff:") and "." in host else f"[{host}]"
    return f"{host}:{int(port_hex, 16)}"


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


class FdResolver:
    def __init__(self, ttl_s: float = 1.0, max_entries: int = 65536) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._cache: dict[tuple[int, int], tuple[float, str]] = {}
        self._sockets: dict[int, str] = {}

    def resolve(self, pid: int, fd: int) -> str:
        """The fd's target, or "" when the fd is gone or unreadable."""
        now = time.monotonic()
        key = (pid, fd)
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            return ""
        if link.startswith("socket:["):
            inode = int(link[8:-1])
            text = self._sockets.get(inode)
            if text is None:
                self._sockets = read_socket_table(pid)
                text = self._sockets.get(inode, link)
            link = text
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[key] = (now, link)
        return link

    def forget_pid(self, pid: int) -> None:
        for key in [k for k in self._cache if k[0] == pid]:
            del self._cache[key]
