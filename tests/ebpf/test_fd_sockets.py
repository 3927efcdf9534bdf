"""Sockets are named from the kernel's struct sock at sys_exit (bpf/goblock.h
fd_sockaddr), not by walking /proc/<pid>/net/{tcp,udp}{,6}: each walk cost a few ms of
kernel time that a PREEMPT_NONE kernel does not interrupt, and the observed app felt it as
wakeup latency (benchmarks/soak.py's p99)."""

from __future__ import annotations

import ctypes
import os
import re
import socket
import sys
import threading
from pathlib import Path

import pytest
from ebpf_harness import Proc
from otel_goblock.receivers.ebpf import fdtarget, program

pytestmark = pytest.mark.ebpf
REPLY_AFTER_S = 0.03  # the target's recv blocks this long: well over the 1 ms threshold

# The target: a plain (non-Go) process named gbfx, so the session receiver watches it.
# It asks each server for a reply and waits in a blocking recv; it prints its endpoints.
CLIENT = r"""
import socket, sys
for spec in sys.argv[1:]:
    kind, host, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    typ = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    s = socket.socket(fam, typ)
    s.connect((host, int(port)))
    s.send(b"x")
    s.recv(16)
    l, p = s.getsockname(), s.getpeername()
    fmt = (lambda a: f"[{a[0]}]:{a[1]}") if fam == socket.AF_INET6 else (lambda a: f"{a[0]}:{a[1]}")
    print(f"{kind}{'6' if fam == socket.AF_INET6 else '4'}={kind} {fmt(l)}->{fmt(p)}", flush=True)
    s.close()
"""


def _server(kind: str, host: str) -> tuple[str, threading.Thread]:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind((host, 0))
    s.settimeout(20)

    def serve() -> None:
        with s:
            if kind == "udp":
                _, peer = s.recvfrom(16)
                threading.Event().wait(REPLY_AFTER_S)
                s.sendto(b"y", peer)
                return
            s.listen(1)
            c, _ = s.accept()
            with c:
                c.recv(16)
                threading.Event().wait(REPLY_AFTER_S)
                c.send(b"y")
                c.recv(16)  # until the client closes

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return f"{kind},{host},{s.getsockname()[1]}", t


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_socket_targets_come_from_the_kernel_without_walking_proc_net(
    receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a spy, not a fake: the real function still runs; the test counts whether it is needed
    walks: list[int] = []
    real = fdtarget.read_socket_table
    monkeypatch.setattr(fdtarget, "read_socket_table", lambda pid: walks.append(pid) or real(pid))

    servers = [_server("tcp", "127.0.0.1"), _server("udp", "127.0.0.1")]
    if _has_ipv6_loopback():
        servers.append(_server("tcp", "::1"))
    exe = tmp_path / "gbfx"  # comm = the name execve was given
    exe.symlink_to(os.path.realpath(sys.executable))
    p = Proc([str(exe), "-c", CLIENT, *(spec for spec, _ in servers)])
    try:
        assert p.wait() == 0, p.lines
    finally:
        p.kill()
    expected = {line.split("=", 1)[1] for line in p.lines if "=" in line}
    assert len(expected) == len(servers), p.lines

    sink = receiver.sink

    def targets() -> set[str]:
        return {
            e.attrs["fd_target"]
            for e in sink.of(p.pid, "syscall")
            if e.attrs["name"] in ("recvfrom", "recvmsg", "read")
        }

    assert sink.wait_for(lambda: expected <= targets()), (expected, targets())
    assert p.pid not in walks, "the agent walked /proc/<pid>/net to name a socket"


def test_sockaddr_layout_matches_the_header() -> None:
    """fdtarget decodes `struct fd_sockaddr` with one struct format; BCC's layout of the C
    struct must agree field by field."""
    bcc = program.import_bcc()
    hdr = (program.BPF_DIR / "goblock.h").read_text()
    text = hdr + "\nBPF_ARRAY(sa, struct fd_sockaddr, 1);\nint f(void *ctx) { return 0; }\n"
    b = bcc.BPF(text=text.encode(), cflags=[f"-I{program.BPF_DIR}"])
    try:
        leaf = b[b"sa"].Leaf
        offsets = [getattr(leaf, name).offset for name, *_ in leaf._fields_]
    finally:
        b.cleanup()
    assert ctypes.sizeof(leaf) == fdtarget._SOCKADDR.size
    # "<BBHHH16s16s": tag, protocol, family, sport, dport, saddr, daddr
    assert offsets == [0, 1, 2, 4, 6, 8, 24]
    m = re.search(r"^#define GOBLOCK_FD_SOCKADDR (\d+)", hdr, re.MULTILINE)
    assert m and bytes([int(m.group(1))]) == fdtarget.FD_SOCKADDR
