/* Go runtime uprobes: goroutine parks with wait reasons, GC stop-the-world and mark
 * assist, goroutine lineage, and span ends of the OTel Go SDK (DESIGN §5).
 *
 * Compiled in the same BCC module as goblock.h (shared maps: targets, config, lost; the
 * go_event record and its constants are there too), before syscalls.bpf.c.
 * Uprobes are attached per target pid, so only target processes ever hit them.
 * Register use follows Go's internal ABI: g in R14 (amd64) / R28 (arm64); integer
 * arguments in AX BX CX DI SI R8-R11 (amd64) / R0-R15 (arm64). Functions that run on the
 * system stack (ready, newproc1) see g0 in the g register: they use their gp argument.
 * Function exits are uprobes on RET instructions found by disassembly: uretprobes
 * corrupt Go's moving stacks and are never used.
 */
#include "goblock.h"

struct go_offsets {
    u32 goid;       /* runtime.g.goid */
    u32 span_ctx;   /* sdk/trace.recordingSpan.spanContext; 0 = no span markers */
};

struct park_key {
    u32 pid;
    u32 _pad;
    u64 goid;
};

struct park_state {
    u64 start_ns;
    u32 tid;
    u8 reason;
    u8 _pad[3];
};

/* short parks, aggregated in the kernel instead of emitted: (pid, reason) → count, ns */
struct park_agg_key {
    u32 pid;
    u32 reason;
};
struct park_agg_val {
    u64 count;
    u64 total_ns;
};

BPF_HASH(go_offsets, u32, struct go_offsets, 4096);
BPF_TABLE("lru_hash", struct park_key, struct park_state, go_parks, 65536);
BPF_TABLE("lru_hash", struct park_key, u64, go_assists, 16384);
BPF_HASH(go_stw, u32, struct park_state, 4096);
BPF_HASH(go_newproc_parent, u32, u64, 4096);  /* tid → parent goid (newproc1 entry) */
BPF_HASH(go_park_agg, struct park_agg_key, struct park_agg_val, 4096);
BPF_RINGBUF_OUTPUT(go_events, GOBLOCK_RING_PAGES);

static __always_inline struct go_offsets *go_target(u32 pid)
{
    return go_offsets.lookup(&pid);
}

static __always_inline struct go_event *go_reserve(void)
{
    struct go_event *e = go_events.ringbuf_reserve(sizeof(struct go_event));
    if (!e) {
        count_lost(LOST_GO);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    return e;
}

/* Close an open park of (pid, goid) at `now`: emit it or aggregate it when short. */
static __always_inline void park_close(u32 pid, u64 goid, u64 now, u8 how)
{
    struct park_key k = {.pid = pid, .goid = goid};
    struct park_state *st = go_parks.lookup(&k);
    if (!st)
        return;
    u64 dur = now - st->start_ns;
    if (dur < cfg(CFG_PARK_THRESHOLD_NS)) {
        struct park_agg_key ak = {.pid = pid, .reason = st->reason};
        struct park_agg_val zero = {};
        struct park_agg_val *a = go_park_agg.lookup_or_try_init(&ak, &zero);
        if (a) {
            __sync_fetch_and_add(&a->count, 1);
            __sync_fetch_and_add(&a->total_ns, dur);
        }
    } else {
        struct go_event *e = go_reserve();
        if (e) {
            e->kind = GO_PARK;
            e->start_ns = st->start_ns;
            e->end_ns = now;
            e->goid = goid;
            e->pid = pid;
            e->tid = st->tid;
            e->reason = st->reason;
            e->flags = how;
            go_events.ringbuf_submit(e, wakeup_flags());
        }
    }
    go_parks.delete(&k);
}

/* runtime.gopark(unlockf, lock, reason waitReason, ...): on the parking goroutine */
int go_gopark(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    struct park_key k = {.pid = pid, .goid = go_goid(GO_G(ctx), o->goid)};
    if (!k.goid)
        return 0;
    struct park_state st = {.start_ns = bpf_ktime_get_ns(), .tid = (u32)id,
                            .reason = (u8)GO_ARG3(ctx)};
    go_parks.update(&k, &st);
    return 0;
}

/* runtime.ready(gp *g, ...): on the system stack; gp is the goroutine made runnable */
int go_ready(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    u64 goid = go_goid(GO_ARG1(ctx), o->goid);
    if (goid)
        park_close(pid, goid, bpf_ktime_get_ns(), PARK_END_READY);
    return 0;
}

/* Goroutines woken by the netpoller (injectglist) never pass through ready(): their
 * park ends when they are seen running again; their next syscall is the usual sign.
 * With the syscalls concern on, its sys_enter calls go_resumed(); otherwise this program
 * is attached to raw_syscalls:sys_enter by name.
 *
 * Except rt_sigreturn: a signal (SIGURG, the runtime's async preemption) that lands
 * between gopark's entry and its switch to g0 returns through rt_sigreturn with the
 * parked goroutine still in TLS, and that syscall says nothing about it running again —
 * it closed a 40 ms sleep after 15-70 us in 1 of ~25 runs of the parker test. */
#ifdef GOBLOCK_ARCH_ARM64
#define GOBLOCK_NR_RT_SIGRETURN 139
#else
#define GOBLOCK_NR_RT_SIGRETURN 15
#endif
static __always_inline void go_resumed(u32 pid, u64 goid, u64 now, long nr)
{
    if (goid && nr != GOBLOCK_NR_RT_SIGRETURN)
        park_close(pid, goid, now, PARK_END_RESUMED);
}

int go_sys_enter(void *args)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    long nr = *(long *)((char *)args + 8);  /* raw_syscalls:sys_enter's `long id` */
    go_resumed(pid, read_goid(o->goid), bpf_ktime_get_ns(), nr);
    return 0;
}

/* runtime.newproc1(fn, callergp *g, ...) *g: entry remembers the parent per thread */
int go_newproc1(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct go_offsets *o = go_target(id >> 32);
    if (!o)
        return 0;
    u32 tid = id;
    u64 parent = go_goid(GO_ARG2(ctx), o->goid);
    go_newproc_parent.update(&tid, &parent);
    return 0;
}

/* a RET of runtime.newproc1: the new g is the result */
int go_newproc1_ret(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    struct go_offsets *o = go_target(pid);
    u64 *parent = go_newproc_parent.lookup(&tid);
    if (!o || !parent)
        return 0;
    struct go_event *e = go_reserve();
    if (e) {
        e->kind = GO_LINEAGE;
        e->start_ns = e->end_ns = bpf_ktime_get_ns();
        e->goid = go_goid(GO_RET1(ctx), o->goid);
        e->aux = *parent;
        e->pid = pid;
        e->tid = tid;
        go_events.ringbuf_submit(e, wakeup_flags());
    }
    go_newproc_parent.delete(&tid);
    return 0;
}

/* runtime.goexit1: the goroutine is done; forget its state (g structs are recycled) */
int go_goexit1(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    struct park_key k = {.pid = pid, .goid = go_goid(GO_G(ctx), o->goid)};
    go_parks.delete(&k);
    go_assists.delete(&k);
    return 0;
}

/* runtime.gcStart */
int go_gc_start(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    if (!go_target(pid))
        return 0;
    struct go_event *e = go_reserve();
    if (e) {
        e->kind = GO_GC_START;
        e->start_ns = e->end_ns = bpf_ktime_get_ns();
        e->pid = pid;
        e->tid = id;
        go_events.ringbuf_submit(e, wakeup_flags());
    }
    return 0;
}

/* runtime.stopTheWorldWithSema(reason stwReason) */
int go_stw_start(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    if (!go_target(pid))
        return 0;
    struct park_state st = {.start_ns = bpf_ktime_get_ns(), .tid = (u32)id,
                            .reason = (u8)GO_ARG1(ctx)};
    go_stw.update(&pid, &st);
    return 0;
}

/* runtime.startTheWorldWithSema: the world restarts */
int go_stw_end(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct park_state *st = go_stw.lookup(&pid);
    if (!st)
        return 0;
    struct go_event *e = go_reserve();
    if (e) {
        e->kind = GO_STW;
        e->start_ns = st->start_ns;
        e->end_ns = bpf_ktime_get_ns();
        e->pid = pid;
        e->tid = st->tid;
        e->reason = st->reason;
        go_events.ringbuf_submit(e, wakeup_flags());
    }
    go_stw.delete(&pid);
    return 0;
}

/* runtime.gcAssistAlloc(gp *g): entry, on the assisting goroutine */
int go_assist_start(struct pt_regs *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    struct park_key k = {.pid = pid, .goid = go_goid(GO_ARG1(ctx), o->goid)};
    u64 now = bpf_ktime_get_ns();
    if (k.goid)
        go_assists.update(&k, &now);
    return 0;
}

/* a RET of runtime.gcAssistAlloc (the g register is the assisting goroutine again) */
int go_assist_end(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o)
        return 0;
    struct park_key k = {.pid = pid, .goid = go_goid(GO_G(ctx), o->goid)};
    u64 *start = go_assists.lookup(&k);
    if (!start)
        return 0;
    u64 now = bpf_ktime_get_ns();
    if (now - *start >= cfg(CFG_ASSIST_THRESHOLD_NS)) {
        struct go_event *e = go_reserve();
        if (e) {
            e->kind = GO_ASSIST;
            e->start_ns = *start;
            e->end_ns = now;
            e->goid = k.goid;
            e->pid = pid;
            e->tid = id;
            go_events.ringbuf_submit(e, wakeup_flags());
        }
    }
    go_assists.delete(&k);
    return 0;
}

/* go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End: receiver in the first
 * argument register; spanContext.traceID at +0, spanID at +16 (DESIGN §5) */
int go_span_end(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct go_offsets *o = go_target(pid);
    if (!o || !o->span_ctx)
        return 0;
    u64 s = GO_ARG1(ctx);
    if (!s)
        return 0;
    u64 goid = go_goid(GO_G(ctx), o->goid);
    u64 now = bpf_ktime_get_ns();
    park_close(pid, goid, now, PARK_END_RESUMED);
    struct go_event *e = go_reserve();
    if (!e)
        return 0;
    e->kind = GO_SPAN_END;
    e->start_ns = e->end_ns = now;
    e->goid = goid;
    e->pid = pid;
    e->tid = id;
    if (bpf_probe_read_user(e->trace_id, 16, (void *)(s + o->span_ctx)) ||
        bpf_probe_read_user(e->span_id, 8, (void *)(s + o->span_ctx + 16))) {
        go_events.ringbuf_discard(e, 0);
        return 0;
    }
    go_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}
