/* Off-CPU intervals and run-queue latency of target threads (sched:sched_switch,
 * sched_wakeup, sched_wakeup_new), the runqlat/offcputime pattern per thread.
 *
 * switch-out of a target thread starts an off-CPU interval, "preempted" when it was still
 * runnable (no sleep bit in prev_state; it also enters the run queue now) or "blocked";
 * a wakeup puts a blocked thread on the run queue; switch-in ends both.  Intervals and
 * run-queue waits ≥ the threshold are emitted; all go into log2 histograms.  The goid
 * comes from tid_goid (cached at sys_enter): user memory cannot be read in sched_switch.
 */
#include "goblock.h"

struct offcpu_start {
    u64 ts;       /* switch-out */
    u64 runq_ts;  /* entered the run queue (wakeup / preemption / new); 0 = not yet */
    u32 tgid;
    u8 state;     /* OFFCPU_* ; 0 = a new thread that never ran */
    u8 runq_cause;
    u8 _pad[2];
};

BPF_HASH(offcpu_start, u32, struct offcpu_start, GOBLOCK_MAX_TIDS);
BPF_HASH(sched_hist, struct sched_hist_key, u64, 1024);
BPF_RINGBUF_OUTPUT(sched_events, GOBLOCK_RING_PAGES);

static __always_inline void sched_emit(u8 kind, u8 state, u32 tgid, u32 tid, u64 start,
                                       u64 end, u64 runq_ns)
{
    struct sched_event *e = sched_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_SCHED);
        return;
    }
    u64 *g = tid_goid.lookup(&tid);
    e->start_ns = start;
    e->end_ns = end;
    e->goid = g ? *g : 0;
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
    u64 now = bpf_ktime_get_ns();
    /* prev: current is still prev here, so its tgid is the current tgid */
    u32 prev = args->prev_pid;
    if (prev) {
        u32 tgid = bpf_get_current_pid_tgid() >> 32;
        if (targets.lookup(&tgid)) {
            struct offcpu_start s = {};
            s.ts = now;
            s.tgid = tgid;
            /* still runnable: the tracepoint reports TASK_RUNNING (0) or, for a preemption,
             * TASK_REPORT_MAX (0x100, "R+"); any bit in the low byte is a sleep state */
            if ((args->prev_state & 0xff) == 0) {
                s.state = OFFCPU_PREEMPTED;
                s.runq_ts = now;
                s.runq_cause = RUNQ_PREEMPTED;
            } else {
                s.state = OFFCPU_BLOCKED;
            }
            offcpu_start.update(&prev, &s);
        }
    }
    u32 next = args->next_pid;
    struct offcpu_start *s = offcpu_start.lookup(&next);
    if (!s)
        return 0;
    u64 thr = cfg(CFG_OFFCPU_THRESHOLD_NS);
    u64 runq = s->runq_ts ? now - s->runq_ts : 0;
    if (s->runq_ts) {
        struct sched_hist_key rk = {.kind = SCHED_RUNQ, .slot = hist_slot(runq)};
        sched_hist.atomic_increment(rk);
        if (runq >= thr)
            sched_emit(SCHED_RUNQ, s->runq_cause, s->tgid, next, s->runq_ts, now, runq);
    }
    if (s->state) {
        u64 off = now - s->ts;
        struct sched_hist_key ok = {.kind = SCHED_OFFCPU, .sub = s->state, .slot = hist_slot(off)};
        sched_hist.atomic_increment(ok);
        if (off >= thr)
            sched_emit(SCHED_OFFCPU, s->state, s->tgid, next, s->ts, now, runq);
    }
    offcpu_start.delete(&next);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    u32 tid = args->pid;
    struct offcpu_start *s = offcpu_start.lookup(&tid);
    if (s && !s->runq_ts) {
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
