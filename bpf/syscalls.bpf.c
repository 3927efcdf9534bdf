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
 *
 * Netpoll peers.  A Go goroutine's socket read/write that returns EAGAIN is followed by a
 * netpoll park ("IO wait"); that short syscall is the only record of which socket the park
 * waits on.  It is kept (netpoll_pending, by pid and goid) instead of emitted, and emitted
 * at the goroutine's next syscall only when the wait in between lasted at least
 * syscall_threshold, the bar of any other blocking episode: a shorter wait is not an
 * episode anyone explains (parks under park_threshold are not even emitted), and those
 * were ~2/3 of the EAGAIN reads of the demo's /net.  The cost: a hash lookup per target
 * sys_enter with a goid.
 */
#include "goblock.h"

BPF_PERCPU_ARRAY(syscall_hist, u64, GOBLOCK_SYSCALL_NR_MAX * GOBLOCK_HIST_SLOTS);
BPF_PERCPU_ARRAY(syscall_sum, u64, GOBLOCK_SYSCALL_NR_MAX);
BPF_RINGBUF_OUTPUT(syscall_events, GOBLOCK_RING_PAGES);

struct netpoll_key {
    u32 pid;
    u32 _pad;
    u64 goid;
};
/* a goroutine's EAGAIN syscall, until its next syscall says how long the wait was; LRU:
 * a goroutine that never makes another syscall (it exited) leaves an entry to evict */
BPF_TABLE("lru_hash", struct netpoll_key, struct syscall_event, netpoll_pending, 16384);

static __always_inline void fill_event(struct syscall_event *e, struct thread_state *s,
                                       u64 start, u64 now, s64 ret, u32 nr)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    e->start_ns = start;
    e->end_ns = now;
    e->goid = s->goid;
    e->ret = ret;
    e->arg0 = s->arg0;
    e->pid = pid_tgid >> 32;
    e->tid = (u32)pid_tgid;
    e->nr = nr;
    e->mode = 0;
    e->ino = 0;
    __builtin_memset(e->fd_name, 0, sizeof(e->fd_name));
    fd_identity(e->arg0, &e->mode, &e->ino, e->fd_name);
}

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
    if (goid && cfg(CFG_NETPOLL_PEERS)) {
        struct netpoll_key k = {.pid = tgid, .goid = goid};
        struct syscall_event *p = netpoll_pending.lookup(&k);
        if (p) { /* this goroutine's last syscall returned EAGAIN: emitted if it waited */
            if (now - p->end_ns >= cfg(CFG_SYSCALL_THRESHOLD_NS)
                && syscall_events.ringbuf_output(p, sizeof(*p), wakeup_flags()))
                count_lost(LOST_SYSCALL);
            netpoll_pending.delete(&k);
        }
    }
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
    if (dur < cfg(CFG_SYSCALL_THRESHOLD_NS)) {
        /* a short EAGAIN of a goroutine: kept until its next syscall (see the top) */
        if (args->ret == -EAGAIN && s->goid && cfg(CFG_NETPOLL_PEERS)) {
            struct syscall_event ev;
            __builtin_memset(&ev, 0, sizeof(ev)); /* the verifier wants every byte set */
            fill_event(&ev, s, start, now, args->ret, nr);
            struct netpoll_key k = {.pid = ev.pid, .goid = ev.goid};
            netpoll_pending.update(&k, &ev);
        }
        return 0;
    }
    struct syscall_event *e = syscall_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_SYSCALL);
        return 0;
    }
    fill_event(e, s, start, now, args->ret, nr);
    syscall_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}
