/* Off-CPU intervals and run-queue latency of target threads (sched:sched_switch,
 * sched_wakeup, sched_wakeup_new), the runqlat/offcputime pattern per thread.
 *
 * switch-out of a target thread starts an off-CPU interval, "preempted" when it was still
 * runnable (no sleep bit in prev_state; it also enters the run queue now) or "blocked";
 * a wakeup puts a blocked thread on the run queue; switch-in ends both.  Intervals and
 * run-queue waits ≥ the threshold are emitted; all go into log2 histograms.  The goid is
 * the one the syscalls program read at the thread's last sys_enter (thread_state), copied
 * at switch-out: user memory cannot be read in sched_switch.
 *
 * Cost.  sched_switch and sched_wakeup run for every context switch and wakeup on the
 * host.  A target thread's offcpu_start entry is kept for the thread's life (deleted at
 * its exit by the proc program) and armed / disarmed in place (ts != 0: an interval is
 * open), so a switch costs lookups, not a hash update on switch-out plus a delete on
 * switch-in; the clock and the config are read only once a target is involved;
 * histograms are per-CPU arrays.  (Task-local storage does not fit here: the tracepoint
 * names the next task by pid only.)
 */
#include "goblock.h"

struct offcpu_start {
    u64 ts;       /* switch-out; 0 = no interval open */
    u64 runq_ts;  /* entered the run queue (wakeup / preemption / new); 0 = not yet */
    u64 goid;     /* at switch-out, from thread_state; 0 = unknown */
    u32 tgid;
    u8 state;     /* OFFCPU_* ; 0 = a new thread that never ran */
    u8 runq_cause;
    u8 _pad[2];
};

BPF_HASH(offcpu_start, u32, struct offcpu_start, GOBLOCK_MAX_TIDS);
BPF_PERCPU_ARRAY(sched_hist, u64, SCHED_HIST_SERIES * GOBLOCK_HIST_SLOTS);
BPF_RINGBUF_OUTPUT(sched_events, GOBLOCK_RING_PAGES);

static __always_inline void sched_hist_add(u32 series, u64 ns)
{
    u32 idx = series * GOBLOCK_HIST_SLOTS + hist_slot(ns);
    u64 *n = sched_hist.lookup(&idx);
    if (n)
        *n += 1;
}

static __always_inline void sched_emit(u8 kind, u8 state, u32 tgid, u32 tid, u64 goid,
                                       u64 start, u64 end, u64 runq_ns)
{
    struct sched_event *e = sched_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_SCHED);
        return;
    }
    e->start_ns = start;
    e->end_ns = end;
    e->goid = goid;
    e->runq_ns = runq_ns;
    e->pid = tgid;
    e->tid = tid;
    e->kind = kind;
    e->state = state;
    __builtin_memset(e->_pad, 0, sizeof(e->_pad));
    sched_events.ringbuf_submit(e, wakeup_flags());
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u64 now = 0;
    /* prev: current is still prev here, so its tgid is the current tgid */
    u32 prev = args->prev_pid;
    if (prev) {
        u32 tgid = bpf_get_current_pid_tgid() >> 32;
        if (targets.lookup(&tgid)) {
            now = bpf_ktime_get_ns();
            /* still runnable: the tracepoint reports TASK_RUNNING (0) or, for a preemption,
             * TASK_REPORT_MAX (0x100, "R+"); any bit in the low byte is a sleep state */
            u8 preempted = (args->prev_state & 0xff) == 0;
            u64 goid = 0;
            struct thread_state *th =
                thread_state.task_storage_get(bpf_get_current_task_btf(), 0, 0);
            if (th)
                goid = th->goid;
            struct offcpu_start *o = offcpu_start.lookup(&prev);
            if (o) {
                o->goid = goid;
                o->runq_ts = preempted ? now : 0;
                o->tgid = tgid;
                o->state = preempted ? OFFCPU_PREEMPTED : OFFCPU_BLOCKED;
                o->runq_cause = preempted ? RUNQ_PREEMPTED : 0;
                o->ts = now; /* armed last */
            } else {
                struct offcpu_start n = {};
                n.ts = now;
                n.goid = goid;
                n.tgid = tgid;
                n.state = preempted ? OFFCPU_PREEMPTED : OFFCPU_BLOCKED;
                if (preempted) {
                    n.runq_ts = now;
                    n.runq_cause = RUNQ_PREEMPTED;
                }
                offcpu_start.update(&prev, &n);
            }
        }
    }
    u32 next = args->next_pid;
    struct offcpu_start *s = offcpu_start.lookup(&next);
    if (!s || !s->ts)
        return 0;
    if (!now)
        now = bpf_ktime_get_ns();
    u64 ts = s->ts, runq_ts = s->runq_ts, goid = s->goid;
    u32 tgid = s->tgid;
    u8 state = s->state, cause = s->runq_cause;
    s->ts = 0; /* disarmed: the entry stays for the thread's next switch-out */
    s->runq_ts = 0;
    u64 thr = cfg(CFG_OFFCPU_THRESHOLD_NS);
    u64 runq = runq_ts ? now - runq_ts : 0;
    if (runq_ts) {
        sched_hist_add(SCHED_HIST_RUNQ, runq);
        if (runq >= thr)
            sched_emit(SCHED_RUNQ, cause, tgid, next, goid, runq_ts, now, runq);
    }
    if (state) {
        u64 off = now - ts;
        sched_hist_add(state == OFFCPU_PREEMPTED ? SCHED_HIST_OFFCPU_PREEMPTED
                                                 : SCHED_HIST_OFFCPU_BLOCKED,
                       off);
        if (off >= thr)
            sched_emit(SCHED_OFFCPU, state, tgid, next, goid, ts, now, runq);
    }
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    u32 tid = args->pid;
    struct offcpu_start *s = offcpu_start.lookup(&tid);
    if (s && s->ts && !s->runq_ts) {
        s->runq_ts = bpf_ktime_get_ns();
        s->runq_cause = RUNQ_WAKEUP;
    }
    return 0;
}

/* a new thread of a target (woken by its creator, which is current here) */
TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!targets.lookup(&tgid))
        return 0;
    u32 tid = args->pid;
    struct offcpu_start s = {};
    s.ts = s.runq_ts = bpf_ktime_get_ns();
    s.tgid = tgid;
    s.runq_cause = RUNQ_NEW;
    offcpu_start.update(&tid, &s);
    return 0;
}
