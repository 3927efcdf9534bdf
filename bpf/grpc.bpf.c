/* grpc-go transport uprobes: send-side flow-control stalls, WINDOW_UPDATEs, pings,
 * GOAWAYs sent and received, transport closes (keepalive timeouts) — DESIGN §6.
 *
 * Compiled in the same BCC module as goblock.h (and, usually, goruntime.bpf.c: names
 * here are prefixed grpc_ so both fit in one module).  Uprobes are attached per target
 * pid; every program first looks up the pid's offsets, so other processes never pay more
 * than the trap.  Struct offsets come from DWARF through grpc_offsets (per pid) — a field
 * whose offset is unknown (stripped binary) is not read.
 *
 * Which goroutine runs what (grpc-go 1.60-1.85):
 *   (*http2Client|http2Server).write (≤1.68: .Write)  the application goroutine (the span's)
 *   handleWindowUpdate / handlePing / handleGoAway     the transport's reader goroutine
 *   (*loopyWriter).pingHandler, outgoingGoAwayHandler  the loopy writer goroutine
 * A stalled send is the whole duration of write: the per-stream write quota wait
 * ((*writeQuota).get, inlined) is the only place it blocks.  Exits are uprobes on the RET
 * instructions (never uretprobes on Go); R14 still holds the same g at a RET.
 */


/* grpc_event kinds */
#define GRPC_WRITE_WAIT 1     /* interval: write() on goroutine `goid` took ≥ threshold */
#define GRPC_WINDOW_UPDATE 2  /* instant: WINDOW_UPDATE received (stream 0 = connection) */
#define GRPC_PING 3           /* instant: PING sent or received */
#define GRPC_GOAWAY 4         /* instant: GOAWAY sent or received */
#define GRPC_CLOSE 5          /* instant: transport Close(err), err text in `debug` */

/* grpc_event.flags */
#define GRPC_F_ACK 0x01       /* ping: ack flag */
#define GRPC_F_SENT 0x02      /* sent by this process (else received) */
#define GRPC_F_SERVER 0x04    /* the transport is an http2Server (else http2Client) */
#define GRPC_F_HEADS_UP 0x08  /* goaway sent: graceful first GOAWAY (headsUp) */
#define GRPC_F_DECODED 0x10   /* code/debug were read (offsets known) */

/* grpc_offsets.flags */
#define GRPC_O_GOAWAY 0x01    /* GoAwayFrame / goAway offsets known (DWARF) */
#define GRPC_O_FRAMES 0x02    /* FrameHeader / WindowUpdateFrame / PingFrame offsets known */
#define GRPC_O_STREAM_ID 0x04 /* stream_id offset known (it is 0 in grpc-go ≤1.68's Stream) */
#define GRPC_O_AT_STACK_CHECK 0x08 /* entry probes sit on the prologue's `jbe morestack` */

/* Entry probes on amd64 sit on the `jbe runtime.morestack` after the stack check (an
 * emulated branch: one trap instead of two for the out-of-line `cmp`).  When that branch
 * will be taken (CF|ZF) the function restarts after morestack and hits the probe again:
 * the first hit is skipped so each call counts once. */
#ifdef GOBLOCK_ARCH_ARM64
#define GRPC_MORESTACK(ctx, o) 0
#else
#define GRPC_MORESTACK(ctx, o) (((o)->flags & GRPC_O_AT_STACK_CHECK) && ((ctx)->flags & 0x41))
#endif

#define GRPC_DEBUG_LEN 64

/* probe ids: per-CPU hit counters (benchmarks: hits per RPC) */
#define GRPC_HIT_WRITE 0
#define GRPC_HIT_WRITE_RET 1  /* write RET or quota wakeup */
#define GRPC_HIT_WINDOW_UPDATE 2
#define GRPC_HIT_PING_RECV 3
#define GRPC_HIT_PING_SENT 4
#define GRPC_HIT_GOAWAY_RECV 5
#define GRPC_HIT_GOAWAY_SENT 6
#define GRPC_HIT_CLOSE 7
#define GRPC_HIT_MAX 8

struct grpc_offsets {
    u64 threshold_ns;    /* flow_control_wait: emit writes at least this long */
    u32 goid;            /* runtime.g.goid */
    u32 stream_id;       /* (Client|Server)Stream → Stream.id (≤1.68: Stream.id); GRPC_O_STREAM_ID */
    u32 fh_flags;        /* x/net/http2.FrameHeader.Flags */
    u32 fh_stream_id;    /* FrameHeader.StreamID */
    u32 wu_increment;    /* WindowUpdateFrame.Increment */
    u32 ping_data;       /* PingFrame.Data */
    u32 ga_last_stream;  /* GoAwayFrame.LastStreamID */
    u32 ga_code;         /* GoAwayFrame.ErrCode */
    u32 ga_debug;        /* GoAwayFrame.debugData ([]byte) */
    u32 og_code;         /* transport.goAway.code */
    u32 og_debug;        /* transport.goAway.debugData */
    u32 og_heads_up;     /* transport.goAway.headsUp */
    u32 p_ack;           /* transport.ping.ack */
    u32 p_data;          /* transport.ping.data */
    u32 cli_framer;      /* http2Client.framer; 0 = unknown */
    u32 srv_framer;      /* http2Server.framer */
    u32 loopy_framer;    /* loopyWriter.framer */
    u32 loopy_goaway_fn; /* loopyWriter.ssGoAwayHandler: closure {fn, t} of t.outgoingGoAwayHandler */
    u32 flags;           /* GRPC_O_* */
    u32 srv_min_time;    /* http2Server.kep.MinTime (time.Duration); 0 = unknown */
    u32 cli_ka_time;     /* http2Client.kp.Time */
    u32 cli_loopy;       /* http2Client.loopy; 0 = unknown */
    u32 srv_loopy;       /* http2Server.loopy */
    u32 loopy_oiws;      /* loopyWriter.oiws: the peer's initial stream window */
    u32 _pad;
};

struct grpc_event {
    u64 start_ns;        /* CLOCK_MONOTONIC */
    u64 end_ns;
    u64 goid;
    u64 conn;            /* the transport (*http2Client / *http2Server): connection identity */
    u32 pid;
    u32 tid;
    u32 stream_id;       /* write / window update: stream; goaway: last stream id */
    u32 value;           /* write: bytes; window update: increment; goaway: error code;
                          * ping received: the transport's keepalive setting in ms (server:
                          * enforcement MinTime, client: keepalive Time) */
    u8 kind;             /* GRPC_* */
    u8 flags;            /* GRPC_F_* */
    u8 debug_len;        /* bytes valid in `debug` */
    u8 _pad[5];
    u8 data[8];          /* ping: payload (keepalive: zeros; BDP and drain pings are fixed);
                          * write wait: u32 little-endian peer initial stream window */
    char debug[GRPC_DEBUG_LEN]; /* goaway debug data, close error text (truncated) */
};

struct grpc_key {
    u32 pid;
    u32 _pad;
    u64 goid;
};

struct grpc_write {
    u64 start_ns;
    u64 conn;
    u32 stream_id;
    u32 bytes;
    u32 tid;
    u8 server;
    u8 _pad[3];
};

struct grpc_framer_key {
    u32 pid;
    u32 _pad;
    u64 framer;
};

BPF_HASH(grpc_offsets, u32, struct grpc_offsets, 4096);
BPF_TABLE("lru_hash", struct grpc_key, struct grpc_write, grpc_writes, 16384);
BPF_TABLE("lru_hash", struct grpc_framer_key, u64, grpc_framers, 16384); /* framer → transport */
BPF_PERCPU_ARRAY(grpc_hits, u64, GRPC_HIT_MAX);
BPF_PERCPU_ARRAY(grpc_lost, u64, 1);
BPF_RINGBUF_OUTPUT(grpc_events, GOBLOCK_RING_PAGES);

/* uprobes sit on the binary (every process running it traps); hits are counted for the
 * target pids only, the cost the probes add per RPC of an observed process */
static __always_inline struct grpc_offsets *grpc_target(u32 pid, u32 hit)
{
    struct grpc_offsets *o = grpc_offsets.lookup(&pid);
    if (o) {
        u64 *n = grpc_hits.lookup(&hit);
        if (n)
            (*n)++;
    }
    return o;
}

static __always_inline u32 grpc_u32(u64 base, u32 off)
{
    u32 v = 0;
    if (base)
        bpf_probe_read_user(&v, sizeof(v), (void *)(base + off));
    return v;
}

static __always_inline u64 grpc_u64(u64 base, u32 off)
{
    u64 v = 0;
    if (base)
        bpf_probe_read_user(&v, sizeof(v), (void *)(base + off));
    return v;
}

static __always_inline struct grpc_event *grpc_reserve(u8 kind, u32 pid, u64 id, u64 conn)
{
    struct grpc_event *e = grpc_events.ringbuf_reserve(sizeof(struct grpc_event));
    if (!e) {
        u32 zero = 0;
        u64 *v = grpc_lost.lookup(&zero);
        if (v)
            (*v)++;
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->pid = pid;
    e->tid = (u32)id;
    e->conn = conn;
    e->start_ns = e->end_ns = bpf_ktime_get_ns();
    return e;
}

/* remember transport ↔ framer, so loopy-side probes (which only know the framer) can name
 * the connection when the loopy closure is not readable */
static __always_inline void grpc_learn_framer(struct grpc_offsets *o, u32 pid, u64 t,
                                              u32 framer_off, u8 hot)
{
    /* hot paths (every send, every WINDOW_UPDATE) skip it when loopy's closure names the
     * transport (grpc-go 1.64-1.85 pass t.outgoingGoAwayHandler on both sides); the rare
     * frames (pings, GOAWAY, close) still fill it for binaries where that closure is nil */
    if ((hot && o->loopy_goaway_fn) || !framer_off || !t)
        return;
    struct grpc_framer_key k = {.pid = pid, .framer = grpc_u64(t, framer_off)};
    if (k.framer)
        grpc_framers.update(&k, &t);
}

static __always_inline u64 grpc_loopy_conn(u32 pid, struct grpc_offsets *o, u64 l)
{
    if (!l)
        return 0;
    if (o->loopy_goaway_fn) {
        u64 fn = grpc_u64(l, o->loopy_goaway_fn);
        u64 t = fn ? grpc_u64(fn, 8) : 0;
        if (t)
            return t;
    }
    if (!o->loopy_framer)
        return 0;
    struct grpc_framer_key k = {.pid = pid, .framer = grpc_u64(l, o->loopy_framer)};
    u64 *t = grpc_framers.lookup(&k);
    return t ? *t : 0;
}

/* copy a Go []byte / string (ptr at +0, len at +8) of `base + off` into e->debug */
static __always_inline void grpc_copy_bytes(struct grpc_event *e, u64 base, u32 off)
{
    u64 hdr[2] = {};
    if (!base || bpf_probe_read_user(hdr, sizeof(hdr), (void *)(base + off)))
        return;
    u64 n = hdr[1];
    if (!hdr[0] || !n)
        return;
    if (n > GRPC_DEBUG_LEN)
        n = GRPC_DEBUG_LEN;
    if (bpf_probe_read_user(e->debug, n & (GRPC_DEBUG_LEN * 2 - 1), (void *)hdr[0]) == 0)
        e->debug_len = n;
}

/* (*http2Client|http2Server).write(s, hdr []byte, data, opts): entry, app goroutine */
static __always_inline int grpc_write_entry(struct pt_regs *ctx, u8 server)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_WRITE);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    struct grpc_key k = {.pid = pid, .goid = go_goid(GO_G(ctx), o->goid)};
    if (!k.goid)
        return 0;
    u64 t = GO_ARG1(ctx);
    struct grpc_write w = {.start_ns = bpf_ktime_get_ns(), .conn = t, .tid = (u32)id,
                           .server = server};
    /* hdr is gRPC's 5-byte message prefix: flag, then the message length big-endian */
    u8 hdr[5] = {};
    if (GO_ARG4(ctx) >= 5 && !bpf_probe_read_user(hdr, 5, (void *)GO_ARG3(ctx)))
        w.bytes = 5 + ((u32)hdr[1] << 24 | (u32)hdr[2] << 16 | (u32)hdr[3] << 8 | hdr[4]);
    if (o->flags & GRPC_O_STREAM_ID)
        w.stream_id = grpc_u32(GO_ARG2(ctx), o->stream_id);
    grpc_writes.update(&k, &w);
    grpc_learn_framer(o, pid, t, server ? o->srv_framer : o->cli_framer, 1);
    return 0;
}

int grpc_client_write(struct pt_regs *ctx) { return grpc_write_entry(ctx, 0); }
int grpc_server_write(struct pt_regs *ctx) { return grpc_write_entry(ctx, 1); }

/* Close (or cut) the open write of this goroutine at `now`: emit [start, now] when long
 * enough.  `done`: the write returned (RET probe) — else the goroutine just woke from the
 * write-quota select and the write goes on: the next piece starts now. */
static __always_inline void grpc_write_mark(struct pt_regs *ctx, u32 hit, u8 done)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, hit);
    if (!o)
        return;
    struct grpc_key k = {.pid = pid, .goid = go_goid(GO_G(ctx), o->goid)};
    struct grpc_write *w = grpc_writes.lookup(&k);
    if (!w)
        return;
    u64 now = bpf_ktime_get_ns();
    if (now - w->start_ns >= o->threshold_ns) {
        struct grpc_event *e = grpc_reserve(GRPC_WRITE_WAIT, pid, id, w->conn);
        if (e) {
            e->start_ns = w->start_ns;
            e->end_ns = now;
            e->goid = k.goid;
            e->tid = w->tid;
            e->stream_id = w->stream_id;
            e->value = w->bytes;
            e->flags = GRPC_F_SENT | (w->server ? GRPC_F_SERVER : 0);
            u32 lo = w->server ? o->srv_loopy : o->cli_loopy;
            if (lo && o->loopy_oiws) {
                u32 win = grpc_u32(grpc_u64(w->conn, lo), o->loopy_oiws);
                __builtin_memcpy(e->data, &win, 4);
            }
            grpc_events.ringbuf_submit(e, wakeup_flags());
        }
    }
    if (done)
        grpc_writes.delete(&k);
    else
        w->start_ns = now;
}

/* a RET of write: same goroutine (R14).  Used only when the wake point is not found. */
int grpc_write_ret(struct pt_regs *ctx)
{
    grpc_write_mark(ctx, GRPC_HIT_WRITE_RET, 1);
    return 0;
}

/* inside write, the `jne` right after `call runtime.selectgo` of the inlined
 * (*writeQuota).get: reached only when the send blocked on its stream's write quota,
 * once per wakeup.  Cheaper than RET probes (an emulated branch, and only on stalls). */
int grpc_write_wake(struct pt_regs *ctx)
{
    grpc_write_mark(ctx, GRPC_HIT_WRITE_RET, 0);
    return 0;
}

/* (*http2Client|http2Server).handleWindowUpdate(f *http2.WindowUpdateFrame): reader */
static __always_inline int grpc_window_update(struct pt_regs *ctx, u8 server)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_WINDOW_UPDATE);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 t = GO_ARG1(ctx), f = GO_ARG2(ctx);
    grpc_learn_framer(o, pid, t, server ? o->srv_framer : o->cli_framer, 1);
    struct grpc_event *e = grpc_reserve(GRPC_WINDOW_UPDATE, pid, id, t);
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    e->flags = server ? GRPC_F_SERVER : 0;
    if (o->flags & GRPC_O_FRAMES) {
        e->stream_id = grpc_u32(f, o->fh_stream_id);
        e->value = grpc_u32(f, o->wu_increment);
        e->flags |= GRPC_F_DECODED;
    }
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

int grpc_client_window_update(struct pt_regs *ctx) { return grpc_window_update(ctx, 0); }
int grpc_server_window_update(struct pt_regs *ctx) { return grpc_window_update(ctx, 1); }

/* (*http2Client|http2Server).handlePing(f *http2.PingFrame): a PING received */
static __always_inline int grpc_ping_recv(struct pt_regs *ctx, u8 server)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_PING_RECV);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 t = GO_ARG1(ctx), f = GO_ARG2(ctx);
    grpc_learn_framer(o, pid, t, server ? o->srv_framer : o->cli_framer, 0);
    struct grpc_event *e = grpc_reserve(GRPC_PING, pid, id, t);
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    e->flags = server ? GRPC_F_SERVER : 0;
    if (o->flags & GRPC_O_FRAMES && f) {
        u8 fl = 0;
        bpf_probe_read_user(&fl, 1, (void *)(f + o->fh_flags));
        if (fl & 0x1) /* http2.FlagPingAck */
            e->flags |= GRPC_F_ACK;
        bpf_probe_read_user(e->data, 8, (void *)(f + o->ping_data));
        e->flags |= GRPC_F_DECODED;
    }
    u32 ka = server ? o->srv_min_time : o->cli_ka_time;
    if (ka)
        e->value = grpc_u64(t, ka) / 1000000;
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

int grpc_client_ping(struct pt_regs *ctx) { return grpc_ping_recv(ctx, 0); }
int grpc_server_ping(struct pt_regs *ctx) { return grpc_ping_recv(ctx, 1); }

/* (*loopyWriter).pingHandler(p *ping): a PING written (keepalive, BDP, ack, drain) */
int grpc_ping_sent(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_PING_SENT);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 l = GO_ARG1(ctx), p = GO_ARG2(ctx);
    struct grpc_event *e = grpc_reserve(GRPC_PING, pid, id, grpc_loopy_conn(pid, o, l));
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    e->flags = GRPC_F_SENT;
    u64 side = grpc_u64(l, 0); /* loopyWriter.side: clientSide 0, serverSide 1 */
    if (side == 1)
        e->flags |= GRPC_F_SERVER;
    if (p) {
        u8 ack = 0;
        bpf_probe_read_user(&ack, 1, (void *)(p + o->p_ack));
        if (ack)
            e->flags |= GRPC_F_ACK;
        bpf_probe_read_user(e->data, 8, (void *)(p + o->p_data));
        e->flags |= GRPC_F_DECODED;
    }
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

/* (*http2Client).handleGoAway(f *http2.GoAwayFrame): a GOAWAY received from the server */
int grpc_goaway_recv(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_GOAWAY_RECV);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 t = GO_ARG1(ctx), f = GO_ARG2(ctx);
    grpc_learn_framer(o, pid, t, o->cli_framer, 0);
    struct grpc_event *e = grpc_reserve(GRPC_GOAWAY, pid, id, t);
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    if (o->flags & GRPC_O_GOAWAY && f) {
        e->stream_id = grpc_u32(f, o->ga_last_stream);
        e->value = grpc_u32(f, o->ga_code);
        grpc_copy_bytes(e, f, o->ga_debug);
        e->flags |= GRPC_F_DECODED;
    }
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

/* (*http2Server|http2Client).outgoingGoAwayHandler(g *goAway): loopy writes a GOAWAY */
static __always_inline int grpc_goaway_out(struct pt_regs *ctx, u8 server)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_GOAWAY_SENT);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 t = GO_ARG1(ctx), g = GO_ARG2(ctx);
    grpc_learn_framer(o, pid, t, server ? o->srv_framer : o->cli_framer, 0);
    struct grpc_event *e = grpc_reserve(GRPC_GOAWAY, pid, id, t);
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    e->flags = GRPC_F_SENT | (server ? GRPC_F_SERVER : 0);
    if (o->flags & GRPC_O_GOAWAY && g) {
        e->value = grpc_u32(g, o->og_code);
        u8 heads_up = 0;
        bpf_probe_read_user(&heads_up, 1, (void *)(g + o->og_heads_up));
        if (heads_up)
            e->flags |= GRPC_F_HEADS_UP;
        grpc_copy_bytes(e, g, o->og_debug);
        e->flags |= GRPC_F_DECODED;
    }
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

int grpc_server_goaway_sent(struct pt_regs *ctx) { return grpc_goaway_out(ctx, 1); }
int grpc_client_goaway_sent(struct pt_regs *ctx) { return grpc_goaway_out(ctx, 0); }

/* (*http2Client|http2Server).Close(err error): once per connection.  The error's data
 * word points at a value whose first field is a string for the errors grpc-go closes
 * with (ConnectionError.Desc, errors.errorString.s): copied as text, classified in user
 * space ("keepalive ping failed to receive ACK within timeout" → keepalive_timeout). */
static __always_inline int grpc_close(struct pt_regs *ctx, u8 server)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    struct grpc_offsets *o = grpc_target(pid, GRPC_HIT_CLOSE);
    if (!o || GRPC_MORESTACK(ctx, o))
        return 0;
    u64 t = GO_ARG1(ctx);
    struct grpc_event *e = grpc_reserve(GRPC_CLOSE, pid, id, t);
    if (!e)
        return 0;
    e->goid = go_goid(GO_G(ctx), o->goid);
    e->flags = server ? GRPC_F_SERVER : 0;
    if (GO_ARG2(ctx)) /* itab: a non-nil error */
        grpc_copy_bytes(e, GO_ARG3(ctx), 0);
    grpc_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

int grpc_client_close(struct pt_regs *ctx) { return grpc_close(ctx, 0); }
int grpc_server_close(struct pt_regs *ctx) { return grpc_close(ctx, 1); }
