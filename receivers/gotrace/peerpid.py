"""Which local process listens on a TCP port (to stamp a pulled trace with its pid).

/proc/net/tcp{,6} gives the LISTEN socket's inode; the process holding an fd to
`socket:[inode]` is the listener. Reading other processes' fds needs the same user or
root: when that is not allowed the answer is None and the receiver asks for `pid`.
"""

from __future__ import annotations

import os

_LISTEN = "0A"


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if (
                        len(cols) > 9
                        and cols[3] == _LISTEN
                        and int(cols[1].rsplit(":", 1)[1], 16) == port
                    ):
                        inodes.add(cols[9])
        except OSError:
            continue
    return inodes


def listening_pid(port: int) -> int | None:
    inodes = _listen_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                try:
                    if os.readlink(fd.path) in targets:
                        return int(entry.name)
                except OSError:
                    continue
        except OSError:
            continue
    return None
