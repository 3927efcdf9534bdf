/* Process lifecycle, for target tracking (sched:sched_process_exec / sched_process_exit).
 *
 * exec: every exec on the host is reported (exec rates are low), so user space can match a
 * process that starts later or restarts against the target specs and add it to `targets`.
 * exit: per-thread state is dropped here in kernel (no leak when tids are reused); the
 * exit of a target's thread-group leader is reported so user space can detach it.
 */
#include "goblock.h"

/* submitted with default flags: an exec wakes the poll thread at once, so that a new
 * target is attached within milliseconds */
BPF_RINGBUF_OUTPUT(proc_events, 64);

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    struct proc_event *e = proc_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_PROC);
        return 0;
    }
    u64 pid_tgid = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = pid_tgid >> 32;
    e->tid = (u32)pid_tgid;
    e->kind = PROC_EXEC;
    __builtin_memset(e->_pad, 0, sizeof(e->_pad));
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    __builtin_memset(e->filename, 0, sizeof(e->filename));
    TP_DATA_LOC_READ_STR(&e->filename, filename, sizeof(e->filename));
    proc_events.ringbuf_submit(e, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    /* (per-thread syscall state and goid: task storage, freed with the task) */
#ifdef GOBLOCK_SCHED
    offcpu_start.delete(&tid);
#endif
    if (tgid != tid || !targets.lookup(&tgid))
        return 0;
    targets.delete(&tgid); /* detach now, even if the event below is lost */
    struct proc_event *e = proc_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_PROC);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->pid = tgid;
    e->tid = tid;
    e->kind = PROC_EXIT;
    __builtin_memset(e->_pad, 0, sizeof(e->_pad));
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    __builtin_memset(e->filename, 0, sizeof(e->filename));
    proc_events.ringbuf_submit(e, 0);
    return 0;
}
