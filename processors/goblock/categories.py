"""The vocabulary of the breakdown: segment codes, wait-reason → cause, syscall classes.

Codes double as sweep priorities (lower wins when two intervals of one goroutine
overlap): a stopped world explains everything under it; a parked goroutine is not on any
thread, so kernel events of its last thread belong to someone else; a syscall explains
the off-CPU time of its thread; off-CPU time with no syscall or park is unexplained.
"""

from __future__ import annotations

import re

GC_STW = 0
GRPC_FC = 1
PARK = 2
SYSCALL = 3
GC_ASSIST = 4
RUNQUEUE = 5
OFFCPU = 6  # thread off-CPU, blocked, with no syscall or park to say why
ON_CPU = 7  # implicit: time no wait covers
UNKNOWN = 8  # no goroutine joined: only process-wide events can explain the time

CAUSES = (
    "on_cpu",
    "runqueue",
    "network",
    "disk",
    "syscall",
    "lock",
    "channel",
    "sleep",
    "gc_stw",
    "gc_assist",
    "grpc_flow_control",
    "grpc_keepalive",
    "unattributed",
)

# Go wait reasons (runtime.waitReasonStrings, 1.21-1.27) and the block reasons of the
# execution tracer (internal/trace) mapped to causes. Unlisted reasons count as
# unexplained for the cause (their time still shows under goblock.park.<reason>.ms).
PARK_CAUSE: dict[str, str] = {
    "chan receive": "channel",
    "chan send": "channel",
    "chan receive (nil chan)": "channel",
    "chan send (nil chan)": "channel",
    "select": "channel",
    "select (no cases)": "channel",
    "sleep": "sleep",
    "sync.Mutex.Lock": "lock",
    "sync.RWMutex.RLock": "lock",
    "sync.RWMutex.Lock": "lock",
    "sync.WaitGroup.Wait": "lock",
    "sync.Cond.Wait": "lock",
    "sync.(*Cond).Wait": "lock",
    "semacquire": "lock",
    "sync": "lock",
    "IO wait": "network",
    "network": "network",
    "GC assist wait": "gc_assist",
    "GC mark assist wait": "gc_assist",
    "GC mark assist wait for work": "gc_assist",  # the execution tracer's block reason
    "GC assist marking": "gc_assist",
    "wait for GC cycle": "gc_assist",
    "wait until GC ends": "gc_assist",
    "preempted": "runqueue",
}

# parks that wait on other goroutines: explained by the child that finished last
WAITS_ON_CHILDREN = frozenset(
    {"chan receive", "select", "sync.WaitGroup.Wait", "semacquire", "sync", "sync.Cond.Wait"}
)

DISK_SYSCALLS = frozenset(
    {"fsync", "fdatasync", "sync_file_range", "syncfs", "sync", "msync", "io_uring_enter"}
)
NETWORK_SYSCALLS = frozenset(
    {
        "connect",
        "accept",
        "accept4",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "poll",
        "ppoll",
        "select",
        "pselect6",
        "shutdown",
    }
)

_SLUG_RE = re.compile(r"[^a-z0-9]+")


def slug(reason: str) -> str:
    """A wait reason as an attribute key part: "chan receive" → chan_receive,
    "sync.Mutex.Lock" → sync_mutex_lock, "sync.(*Cond).Wait" → sync_cond_wait."""
    return _SLUG_RE.sub("_", reason.lower()).strip("_") or "unknown"


def syscall_class(name: str, target: str) -> str:
    """network / disk / syscall, from the fd target first (what the fd is), else the name."""
    if target:
        if target.startswith(("tcp", "udp", "unix", "socket:")):
            return "network"
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/", "/sys/")):
            return "disk"
        if "/" in target or ":" in target:
            return "syscall"
        # a bare name: a file the fd no longer named when the agent looked (closed, or the
        # fd reused: receivers/ebpf/fdtarget.py keeps the kernel's dentry name): the
        # syscall says what it was (an fsync on a deleted temp file is still the disk)
    if name in DISK_SYSCALLS:
        return "disk"
    if name in NETWORK_SYSCALLS:
        return "network"
    return "syscall"


def peer_of(target: str) -> str:
    """The remote end of a socket target: "tcp 127.0.0.1:5000->10.0.0.5:5432" → 10.0.0.5:5432."""
    got = _peers.get(target)
    if got is None:
        if not target.startswith(("tcp", "udp", "unix")):
            got = ""
        else:
            rest = target.partition(" ")[2]
            got = rest.rpartition("->")[2] if "->" in rest else rest
        # memo of recurring targets (asked per wait, per episode): small, so one-off
        # targets (an ephemeral port per request) cycle it instead of growing the heap
        if len(_peers) >= 4096:
            _peers.clear()
        _peers[target] = got
    return got


_peers: dict[str, str] = {}


def conn_key(target: str) -> frozenset[str] | None:
    """Both ends of a TCP socket target, order-free, to match TCP events to a connection."""
    if not target.startswith("tcp"):
        return None
    rest = target.partition(" ")[2]
    local, sep, remote = rest.partition("->")
    return frozenset((local, remote)) if sep else None


def endpoint(addr: str, port: object) -> str:
    """An address as fd targets write it: IPv6 in brackets, IPv4-mapped as IPv4."""
    if addr.startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    elif ":" in addr and not addr.startswith("["):
        addr = f"[{addr}]"
    return f"{addr}:{port}"


READ_SYSCALLS = frozenset({"read", "readv", "pread64", "preadv", "preadv2", "recvfrom", "recvmsg"})
WRITE_SYSCALLS = frozenset(
    {"write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg", "sendfile"}
)


def verb(syscall: str) -> str:
    if syscall in READ_SYSCALLS:
        return "reading from"
    if syscall in WRITE_SYSCALLS:
        return "writing to"
    if syscall == "connect":
        return "connecting to"
    if syscall in ("accept", "accept4"):
        return "accepting on"
    return "waiting on"
