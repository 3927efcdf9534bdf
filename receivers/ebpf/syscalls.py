"""Syscall numbers → names (x86_64 table shipped with bcc) and which take an fd first."""

from __future__ import annotations

from functools import lru_cache

from otel_goblock.receivers.ebpf.program import import_bcc

# syscalls whose first argument is a file descriptor: their episodes carry `fd` and the
# fd's target (socket 4-tuple, file path, pipe)
FD_SYSCALLS = frozenset(
    {
        "read",
        "write",
        "pread64",
        "pwrite64",
        "readv",
        "writev",
        "preadv",
        "pwritev",
        "preadv2",
        "pwritev2",
        "fsync",
        "fdatasync",
        "sync_file_range",
        "syncfs",
        "ftruncate",
        "fallocate",
        "flock",
        "fcntl",
        "ioctl",
        "lseek",
        "getdents64",
        "fstat",
        "fstatfs",
        "sendto",
        "recvfrom",
        "sendmsg",
        "recvmsg",
        "sendmmsg",
        "recvmmsg",
        "connect",
        "accept",
        "accept4",
        "shutdown",
        "getsockopt",
        "setsockopt",
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_ctl",
        "sendfile",
        "splice",
        "tee",
        "copy_file_range",
        "io_uring_enter",
        "close",
        "fadvise64",
        "fgetxattr",
        "fsetxattr",
        "fchmod",
        "fchown",
    }
)


@lru_cache(maxsize=1024)
def syscall_name(nr: int) -> str:
    import_bcc()  # puts Debian's bcc on the path when the venv lacks the link
    from bcc.syscall import syscall_name as bcc_syscall_name  # type: ignore[import-not-found]

    name = bcc_syscall_name(nr)
    return name.decode() if isinstance(name, bytes) else str(name)


@lru_cache(maxsize=1024)
def takes_fd(nr: int) -> bool:
    return syscall_name(nr) in FD_SYSCALLS
