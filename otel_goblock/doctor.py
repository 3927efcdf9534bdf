"""`otel-goblock doctor`: can the eBPF receiver run on this machine, and if not, why.

Each check prints one line: status, what was checked, what was found and — when it is
not OK — how to fix it.  The eBPF receiver runs the same checks at start and fails with
the same text (unless configured `required: false`), so what a user sees in the
collector's log and in `doctor` is one message.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass

SYSCALL_TRACEPOINTS = ("raw_syscalls/sys_enter", "raw_syscalls/sys_exit")
SCHED_TRACEPOINTS = ("sched/sched_switch", "sched/sched_wakeup", "sched/sched_wakeup_new")
PROC_TRACEPOINTS = ("sched/sched_process_exec", "sched/sched_process_exit")
TCP_TRACEPOINTS = (
    "tcp/tcp_probe",
    "tcp/tcp_retransmit_skb",
    "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset",
    "sock/inet_sock_set_state",
    "sock/inet_sk_error_report",
    "sock/sock_send_length",
    "sock/sock_recv_length",
)
ALL_TRACEPOINTS = SYSCALL_TRACEPOINTS + SCHED_TRACEPOINTS + PROC_TRACEPOINTS + TCP_TRACEPOINTS

CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 19, 21, 38, 39
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
SETUP_HINT = "run scripts/setup_ebpf.sh"


@dataclass
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""
    required: bool = True

    def line(self) -> str:
        status = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        text = f"{status} {self.name}: {self.found}"
        if not self.ok and self.fix:
            text += f" — fix: {self.fix}"
        return text


def tracefs_dir() -> str | None:
    for d in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(d, "events")):
            return d
    return None


def effective_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def _check_kernel() -> Check:
    rel = platform.release()
    try:
        major, minor = (int(x) for x in rel.split(".")[:2])
    except ValueError:
        return Check("kernel", True, rel, required=False)
    ok = (major, minor) >= (5, 8)
    return Check("kernel", ok, rel, "BPF ring buffers need Linux ≥ 5.8")


def _check_btf() -> Check:
    path = "/sys/kernel/btf/vmlinux"
    if not os.path.exists(path):
        return Check(
            "btf",
            False,
            f"{path} missing",
            "a kernel built with CONFIG_DEBUG_INFO_BTF=y (without it goroutine ids are unknown)",
            required=False,
        )
    try:
        from otel_goblock.receivers.ebpf.btf import task_fsbase_offset

        off = task_fsbase_offset()
    except Exception as e:
        return Check("btf", False, f"{path}: {e}", "goroutine ids will be 0", required=False)
    return Check("btf", True, f"{path} (task_struct.thread.fsbase at +{off})")


def _check_tracefs() -> Check:
    d = tracefs_dir()
    if d is None:
        return Check(
            "tracefs",
            False,
            "not mounted",
            "mount -t tracefs nodev /sys/kernel/tracing (or " + SETUP_HINT + ")",
        )
    return Check("tracefs", True, d)


def _check_tracepoints(names: Iterable[str]) -> list[Check]:
    d = tracefs_dir()
    out = []
    for tp in names:
        if d is None:
            out.append(Check(f"tracepoint {tp}", False, "tracefs not mounted", "mount tracefs"))
            continue
        path = os.path.join(d, "events", tp, "id")
        if os.path.exists(path):
            out.append(Check(f"tracepoint {tp}", True, "present"))
        else:
            out.append(
                Check(
                    f"tracepoint {tp}",
                    False,
                    f"{path} missing",
                    "a kernel with this tracepoint (CONFIG_FTRACE_SYSCALLS for raw_syscalls; "
                    "tcp/sock events need CONFIG_INET), or disable that concern in the config",
                )
            )
    return out


def _check_caps() -> Check:
    caps = effective_caps()
    have = {
        n: bool(caps >> bit & 1)
        for n, bit in (
            ("CAP_BPF", CAP_BPF),
            ("CAP_PERFMON", CAP_PERFMON),
            ("CAP_SYS_ADMIN", CAP_SYS_ADMIN),
            ("CAP_SYS_PTRACE", CAP_SYS_PTRACE),
        )
    }
    found = ", ".join(f"{n}={'yes' if v else 'no'}" for n, v in have.items())
    missing = []
    if not (have["CAP_SYS_ADMIN"] or (have["CAP_BPF"] and have["CAP_PERFMON"])):
        missing = [n for n in ("CAP_BPF", "CAP_PERFMON") if not have[n]]
    # /proc/<pid>/exe and /proc/<pid>/fd of another user's process: without it the
    # receiver would start and silently observe nothing
    if not have["CAP_SYS_PTRACE"]:
        missing.append("CAP_SYS_PTRACE")
    if not missing:
        return Check("capabilities", True, found)
    return Check(
        "capabilities",
        False,
        f"{found}; missing {' and '.join(missing)}",
        "run as root, or grant them: setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep <python>",
    )


def _check_paranoid() -> Check:
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            val = int(f.read().strip())
    except (OSError, ValueError):
        return Check("perf_event_paranoid", True, "unreadable", required=False)
    caps = effective_caps()
    privileged = bool(caps >> CAP_PERFMON & 1 or caps >> CAP_SYS_ADMIN & 1)
    ok = privileged or val <= 1
    return Check(
        "perf_event_paranoid",
        ok,
        f"{val}" + (" (CAP_PERFMON/CAP_SYS_ADMIN overrides)" if privileged else ""),
        "sysctl kernel.perf_event_paranoid=1, or grant CAP_PERFMON",
    )


def _check_headers() -> Check:
    kdir = f"/lib/modules/{platform.release()}/build"
    if os.path.isdir(os.path.join(kdir, "include")):
        return Check("kernel headers", True, f"{kdir} → {os.path.realpath(kdir)}")
    return Check(
        "kernel headers",
        False,
        f"{kdir} missing",
        "apt-get install linux-headers-amd64 and link /lib/modules/$(uname -r)/build to "
        "/usr/src/linux-headers-*-amd64 (" + SETUP_HINT + ")",
    )


def _check_bcc(compile_: bool) -> list[Check]:
    try:
        from otel_goblock.receivers.ebpf.program import import_bcc

        bcc = import_bcc()
    except Exception as e:
        return [
            Check(
                "bcc",
                False,
                f"not importable ({e})",
                "apt-get install python3-bpfcc, link it into the venv: " + SETUP_HINT,
            )
        ]
    checks = [Check("bcc", True, f"importable ({os.path.dirname(bcc.__file__)})")]
    if not compile_:
        return checks
    try:
        b = bcc.BPF(text=b"int goblock_doctor(void *ctx) { return 0; }")
        try:
            b.load_func(b"goblock_doctor", bcc.BPF.TRACEPOINT)
        finally:
            b.cleanup()
        checks.append(Check("bcc compile+load", True, "a trivial tracepoint program loads"))
    except Exception as e:
        checks.append(
            Check(
                "bcc compile+load",
                False,
                str(e).splitlines()[0] if str(e) else repr(e),
                "kernel headers and CAP_BPF/CAP_SYS_ADMIN (see the lines above)",
            )
        )
    return checks


def checks(tracepoints: Iterable[str] = ALL_TRACEPOINTS, compile_: bool = True) -> list[Check]:
    out = [_check_kernel(), _check_btf(), _check_tracefs()]
    out += _check_tracepoints(tracepoints)
    out += [_check_caps(), _check_paranoid(), _check_headers()]
    out += _check_bcc(compile_)
    return out


def run_doctor(
    tracepoints: Iterable[str] = ALL_TRACEPOINTS, compile_: bool = True
) -> tuple[bool, list[str]]:
    """(ok, lines): ok is False when any required check failed (the receiver cannot run)."""
    cs = checks(tracepoints, compile_)
    return all(c.ok or not c.required for c in cs), [c.line() for c in cs]


def failure_message(lines: list[str]) -> str:
    """The receiver's start error: the failing lines, the same text `doctor` prints."""
    bad = [ln for ln in lines if ln.startswith("FAIL")]
    return "ebpf receiver cannot run on this machine:\n  " + "\n  ".join(bad)


if __name__ == "__main__":
    ok, lines = run_doctor()
    print("\n".join(lines))
    raise SystemExit(0 if ok else 1)
