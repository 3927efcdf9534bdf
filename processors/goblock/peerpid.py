"""Which local process is on the other end of an OTLP connection.

A span's resource usually names its process (`process.pid`); when it does not, the
OTLP client's address tells: on the same host, the client's socket is in
`/proc/net/tcp{,6}` with local address = the peer address the server saw, its inode
names the socket, and the process holding `socket:[inode]` in `/proc/<pid>/fd` is the
sender. The /proc walk costs milliseconds, so results (found or not) are cached.
"""

from __future__ import annotations

import ipaddress
import os
import time
from urllib.parse import unquote

_SOCKET_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def parse_peer(peer: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int] | None:
    """ "127.0.0.1:5000", "[::1]:5000", gRPC's "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000"."""
    text = unquote(peer.strip())
    for prefix in ("ipv4:", "ipv6:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr, int(port)


def _table_addr(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """/proc/net/tcp's "0100007F:1388" (32-bit words in host order, little endian)."""
    hexaddr, hexport = field.split(":")
    raw = bytes.fromhex(hexaddr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(words)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr, int(hexport, 16)


def socket_inode(peer: str, tables: tuple[str, ...] = _SOCKET_TABLES) -> int | None:
    """Inode of the local socket whose local address is `peer`, if it lives on this host."""
    want = parse_peer(peer)
    if want is None:
        return None
    for path in tables:
        try:
            with open(path) as f:
                next(f, None)
                for line in f:
                    parts = line.split()
                    if len(parts) < 10:
                        continue
                    if _table_addr(parts[1]) == want:
                        inode = int(parts[9])
                        if inode:
                            return inode
        except OSError:
            continue
    return None


def pid_of_inode(inode: int, proc: str = "/proc") -> int | None:
    link = f"socket:[{inode}]"
    try:
        pids = [int(d) for d in os.listdir(proc) if d.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") == link:
                    return pid
            except OSError:
                continue
    return None


class PeerPidResolver:
    """peer "ip:port" → pid on this host (None when remote or not found), cached."""

    def __init__(self, ttl_s: float = 30.0, max_entries: int = 4096) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._cache: dict[str, tuple[float, int | None]] = {}

    def cached(self, peer: str) -> tuple[bool, int | None]:
        hit = self._cache.get(peer)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return True, hit[1]
        return False, None

    def resolve(self, peer: str) -> int | None:
        """Blocking (walks /proc): call from a worker thread on the event loop's behalf."""
        found, pid = self.cached(peer)
        if found:
            return pid
        inode = socket_inode(peer)
        pid = pid_of_inode(inode) if inode else None
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[peer] = (time.monotonic(), pid)
        return pid
