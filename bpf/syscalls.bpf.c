/* Blocking syscalls of target processes (raw_syscalls:sys_enter/sys_exit, per thread).
 *
 * In kernel: filter by the targets map, time each syscall, aggregate a log2 latency
 * histogram per syscall number, and emit an event for each episode ≥ the configured
 * threshold.  User space names the syscall and resolves the fd (arg0) to its target.
 * sys_enter is also where the thread's goroutine id is read and cached (tid_goid) for the
 * scheduler programs, which cannot read user memory.
 */
#include "goblock.h"

struct syscall_start {
    u64 ts;
    u64 arg0;
    u64 goid;
    u32 nr;
    u32 _pad;
};

BPF_HASH(syscall_start, u32, struct syscall_start, GOBLOCK_MAX_TIDS);
BPF_HASH(syscall_hist, struct syscall_hist_key, u64, 8192);
BPF_HASH(syscall_sum, u32, u64, 1024);
BPF_RINGBUF_OUTPUT(syscall_events, GOBLOCK_RING_PAGES);

TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    struct target_info *t = targets.lookup(&tgid);
    if (!t)
        return 0;
    struct syscall_start s = {};
    s.ts = bpf_ktime_get_ns();
    s.nr = (u32)args->id;
    s.arg0 = args->args[0];
    s.goid = read_goid(t->goid_off);
    syscall_start.update(&tid, &s);
    if (t->goid_off)
        tid_goid.update(&tid, &s.goid);
#ifdef GOBLOCK_GORUNTIME
    go_resumed(tgid, s.goid, s.ts);  /* a goroutine in a syscall is no longer parked */
#endif
    return 0;
}

TRACEPOINT_PROBE(raw_syscalls, sys_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct syscall_start *s = syscall_start.lookup(&tid);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 dur = now - s->ts;
    struct syscall_hist_key hk = {.nr = s->nr, .slot = hist_slot(dur)};
    syscall_hist.atomic_increment(hk);
    u32 nr = s->nr;
    u64 zero = 0;
    u64 *sum = syscall_sum.lookup_or_try_init(&nr, &zero);
    if (sum)
        __sync_fetch_and_add(sum, dur);
    /* A Go goroutine's read/write that returns EAGAIN is followed by a netpoll park ("IO
     * wait"); that short syscall is the only record of which socket the park waits on,
     * so it is emitted whatever its duration (one per netpoll wait, not per syscall). */
    if (dur >= cfg(CFG_SYSCALL_THRESHOLD_NS) || (args->ret == -EAGAIN && s->goid)) {
        struct syscall_event *e = syscall_events.ringbuf_reserve(sizeof(*e));
        if (!e) {
            count_lost(LOST_SYSCALL);
        } else {
            e->start_ns = s->ts;
            e->end_ns = now;
            e->goid = s->goid;
            e->ret = args->ret;
            e->arg0 = s->arg0;
            e->pid = pid_tgid >> 32;
            e->tid = tid;
            e->nr = s->nr;
            e->mode = 0;
            e->ino = 0;
            __builtin_memset(e->fd_name, 0, sizeof(e->fd_name));
            fd_identity(s->arg0, &e->mode, &e->ino, e->fd_name);
            syscall_events.ringbuf_submit(e, wakeup_flags());
        }
    }
    syscall_start.delete(&tid);
    return 0;
}
