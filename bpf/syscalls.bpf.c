/* Blocking syscalls of target processes (raw_syscalls:sys_enter/sys_exit, per thread).
 *
 * In kernel: filter by the targets map, time each syscall, aggregate a log2 latency
 * histogram per syscall number, and emit an event for each episode ≥ the configured
 * threshold.  User space names the syscall and resolves the fd (arg0) to its target.
 * sys_enter is also where the thread's goroutine id is read and kept (thread_state) for the
 * scheduler programs, which cannot read user memory.
 *
 * Cost.  Both tracepoints run for every syscall of every process on the host, so the
 * non-target paths are kept short: sys_enter does one hash lookup (targets); sys_exit
 * none — the syscall in flight lives in task-local storage (thread_state in goblock.h,
 * created only for target threads), so a thread without it is out after one pointer
 * check.  For target threads: no hash update or delete per syscall (the storage slot is
 * rewritten in place, and the goid stays there for the scheduler program instead of a
 * tid-keyed hash), per-CPU array histograms.
 */
#include "goblock.h"

BPF_PERCPU_ARRAY(syscall_hist, u64, GOBLOCK_SYSCALL_NR_MAX * GOBLOCK_HIST_SLOTS);
BPF_PERCPU_ARRAY(syscall_sum, u64, GOBLOCK_SYSCALL_NR_MAX);
BPF_RINGBUF_OUTPUT(syscall_events, GOBLOCK_RING_PAGES);

TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    struct target_info *t = targets.lookup(&tgid);
    if (!t)
        return 0;
    struct thread_state *s = thread_state.task_storage_get(
        bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 goid = read_goid(t->goid_off);
    s->ts = now;
    s->nr = (u32)args->id;
    s->arg0 = args->args[0];
    s->goid = goid;
#ifdef GOBLOCK_GORUNTIME
    go_resumed(tgid, goid, now, args->id);  /* a goroutine in a syscall is no longer parked */
#endif
    return 0;
}

TRACEPOINT_PROBE(raw_syscalls, sys_exit)
{
    struct thread_state *s = thread_state.task_storage_get(bpf_get_current_task_btf(), 0, 0);
    if (!s || !s->ts)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 start = s->ts;
    u64 dur = now - start;
    u32 nr = s->nr;
    s->ts = 0;
    if (nr < GOBLOCK_SYSCALL_NR_MAX) {
        u32 idx = nr * GOBLOCK_HIST_SLOTS + hist_slot(dur);
        u64 *n = syscall_hist.lookup(&idx);
        if (n)
            *n += 1;
        u64 *sum = syscall_sum.lookup(&nr);
        if (sum)
            *sum += dur;
    }
    /* A Go goroutine's read/write that returns EAGAIN is followed by a netpoll park ("IO
     * wait"); that short syscall is the only record of which socket the park waits on,
     * so it is emitted whatever its duration (one per netpoll wait, not per syscall),
     * unless the receiver's netpoll_peers is off. */
    if (dur < cfg(CFG_SYSCALL_THRESHOLD_NS)
        && !(args->ret == -EAGAIN && s->goid && cfg(CFG_NETPOLL_PEERS)))
        return 0;
    struct syscall_event *e = syscall_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_SYSCALL);
        return 0;
    }
    u64 pid_tgid = bpf_get_current_pid_tgid();
    e->start_ns = start;
    e->end_ns = now;
    e->goid = s->goid;
    e->ret = args->ret;
    e->arg0 = s->arg0;
    e->pid = pid_tgid >> 32;
    e->tid = (u32)pid_tgid;
    e->nr = nr;
    e->mode = 0;
    e->ino = 0;
    __builtin_memset(e->fd_name, 0, sizeof(e->fd_name));
    fd_identity(e->arg0, &e->mode, &e->ino, e->fd_name);
    syscall_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}
