/* TCP trouble on sockets of target processes (tcp:tcp_probe, tcp_retransmit_skb,
 * tcp_send_reset, tcp_receive_reset, sock:inet_sock_set_state, inet_sk_error_report).
 *
 * Ownership.  Most of these fire in softirq context, where `current` is whoever was
 * interrupted, so a socket is mapped to its process (sk_owner: skaddr → pid/tid) where the
 * target's own thread is current:
 *   - sock:sock_send_length / sock_recv_length fire in sock_sendmsg/sock_recvmsg, i.e. in
 *     every send/recv/read/write syscall on a socket, in the caller's context: an accepted
 *     socket is learned on its first read, a connected one on its first write;
 *   - sock:inet_sock_set_state CLOSE → SYN_SENT, which only connect() does, in the caller's
 *     context: covers a connect that never gets to send.
 * `current` in any other state change is NOT evidence: over loopback the receiving side's
 * softirq runs in the sending task's context, so a target's SYN would otherwise claim the
 * peer's listening/accepted socket (seen in tests/ebpf/test_tcp.py).
 * This needs no fd → file → socket walk (kernel struct layouts) and costs one hash lookup
 * per socket operation of a target.
 *
 * Cost.  tcp_probe runs for every received segment on the host and sock_*_length for
 * every socket send/recv: a non-target costs one hash lookup (sk_owner, resp. targets)
 * and nothing else; a target's segment costs the lookup, the clock and, only when the
 * windows changed, a store.  Counters by peer (rare events) stay in a hash.  tuple_owner (4-tuple → pid) serves
 * inet_sk_error_report, which carries no socket pointer.
 *
 * Zero window: tcp_probe runs on each received segment before the ACK is processed, so its
 * snd_wnd is the window the peer advertised last; a transition to 0 (peer's receive buffer
 * full: we cannot send) or of rcv_wnd to 0 (ours full: the app does not read) is emitted.
 * Other tcp_probe samples are emitted at most once per socket per probe interval, and the
 * first one only once the socket has been owned CFG_TCP_PROBE_MIN_AGE_NS: a short
 * connection's loopback srtt says nothing, and its first sample was ~2 events per request
 * of the demo's /net (one per end).
 *
 * State changes: every transition of an owned socket is counted per (old, new) in
 * tcp_state_counts (read as the goblock.tcp.state_changes metric) and keeps the
 * bookkeeping (sk_owner.state for the resets, tuple_owner); only the unusual ones leave
 * as events (unless CFG_TCP_STATES_ALL): a connection's ordinary life is ~4 transitions
 * per end, ~8 events per short loopback connection, ~60 % of the demo's events.
 */
#include "goblock.h"

/* tcp_send_reset's format names `enum sk_rst_reason` (Linux ≥ 6.10); older header packages
 * (the Debian ones BCC compiles against here) lack it, so the loader asks for a stand-in. */
#ifdef GOBLOCK_DECLARE_SK_RST_REASON
enum sk_rst_reason { GOBLOCK_SK_RST_REASON_UNUSED = 0 };
#endif

#define AF_INET_ 2
#define AF_INET6_ 10
#define IPPROTO_TCP_ 6
#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_SYN_RECV_ 3
#define TCP_FIN_WAIT1_ 4
#define TCP_FIN_WAIT2_ 5
#define TCP_TIME_WAIT_ 6
#define TCP_CLOSE_ 7
#define TCP_CLOSE_WAIT_ 8
#define TCP_LAST_ACK_ 9
#define TCP_LISTEN_ 10
#define TCP_CLOSING_ 11
#define TCP_NEW_SYN_RECV_ 12
#define B_(st) (1u << (st))

struct sk_owner {
    u32 pid;
    u32 tid;
    u64 last_probe_ns;
    u32 last_snd_wnd;
    u32 last_rcv_wnd;
    u32 tuple_set;  /* 1: tuple_owner holds this socket's 4-tuple (written once) */
    u32 state;      /* its last TCP state seen (inet_sock_set_state), for the resets */
};

struct tuple_key {
    u8 saddr[16];
    u8 daddr[16];
    u16 sport;
    u16 dport;
    u16 family;
    u16 _pad;
};

BPF_TABLE("lru_hash", u64, struct sk_owner, sk_owner, 16384);
BPF_TABLE("lru_hash", struct tuple_key, u32, tuple_owner, 16384);
BPF_HASH(tcp_counts, struct tcp_count_key, u64, 4096);
BPF_PERCPU_ARRAY(tcp_state_counts, u64, TCP_STATE_SLOTS * TCP_STATE_SLOTS);
BPF_RINGBUF_OUTPUT(tcp_events, GOBLOCK_RING_PAGES);

static __always_inline void learn_owner(u64 sk)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (!targets.lookup(&tgid))
        return;
    struct sk_owner *o = sk_owner.lookup(&sk);
    if (o && o->pid == tgid)
        return;
    /* last_probe_ns such that the first sample comes once the socket is min_age old:
     * now - last_probe_ns = interval - min_age + age (u64 arithmetic wraps consistently) */
    u64 interval = cfg(CFG_TCP_PROBE_INTERVAL_NS), min_age = cfg(CFG_TCP_PROBE_MIN_AGE_NS);
    if (min_age > interval)
        min_age = interval;
    struct sk_owner n = {.pid = tgid, .tid = (u32)pid_tgid, .last_snd_wnd = 1, .last_rcv_wnd = 1};
    n.last_probe_ns = bpf_ktime_get_ns() - interval + min_age;
    sk_owner.update(&sk, &n);
}

/* tuple_owner gets a socket's 4-tuple once, when its local port is known (connect() moves
 * a socket to SYN_SENT before it picks the port): an LRU hash update per state change
 * and per probe sample was most of those programs' cost under connection churn */
static __always_inline void own_tuple(struct sk_owner *o, struct tuple_key *tk)
{
    if (o->tuple_set || !tk->sport)
        return;
    u32 pid = o->pid;
    tuple_owner.update(tk, &pid);
    o->tuple_set = 1;
}

TRACEPOINT_PROBE(sock, sock_send_length)
{
    if (args->protocol == IPPROTO_TCP_)
        learn_owner((u64)args->sk);
    return 0;
}

TRACEPOINT_PROBE(sock, sock_recv_length)
{
    if (args->protocol == IPPROTO_TCP_)
        learn_owner((u64)args->sk);
    return 0;
}

static __always_inline struct tcp_event *tcp_reserve(u8 type, u64 sk, struct sk_owner *o)
{
    struct tcp_event *e = tcp_events.ringbuf_reserve(sizeof(*e));
    if (!e) {
        count_lost(LOST_TCP);
        return 0;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = bpf_ktime_get_ns();
    e->skaddr = sk;
    e->type = type;
    if (o) {
        e->pid = o->pid;
        e->tid = o->tid;
    }
    return e;
}

static __always_inline void count_peer(u8 type, u16 family, const u8 *daddr, u16 dport)
{
    struct tcp_count_key k = {};
    k.type = type;
    k.family = family;
    k.dport = dport;
    __builtin_memcpy(k.daddr, daddr, 16);
    tcp_counts.atomic_increment(k);
}

/* sockaddr_in / sockaddr_in6 as stored by TP_STORE_ADDR_PORTS in a __u8[28] field */
static __always_inline void from_sockaddr(const u8 *sa, u16 *family, u16 *port, u8 *addr)
{
    u16 fam = *(u16 *)sa;
    u16 p = *(u16 *)(sa + 2);
    *family = fam;
    *port = (p >> 8) | (p << 8);
    if (fam == AF_INET_)
        __builtin_memcpy(addr, sa + 4, 4);
    else
        __builtin_memcpy(addr, sa + 8, 16);
}

TRACEPOINT_PROBE(tcp, tcp_probe)
{
    u64 sk = (u64)args->skaddr;
    struct sk_owner *o = sk_owner.lookup(&sk);
    if (!o)
        return 0;
    u64 now = bpf_ktime_get_ns(); /* (bpf_ktime_get_coarse_ns: not for tracing programs) */
    u32 snd_wnd = args->snd_wnd, rcv_wnd = args->rcv_wnd;
    u8 type = 0;
    if ((snd_wnd == 0 && o->last_snd_wnd != 0) || (rcv_wnd == 0 && o->last_rcv_wnd != 0))
        type = TCP_EV_ZERO_WINDOW;
    else if (now - o->last_probe_ns >= cfg(CFG_TCP_PROBE_INTERVAL_NS))
        type = TCP_EV_PROBE;
    /* written only when they change: this runs per received segment, and a store makes
     * the entry's cache line bounce between the CPUs handling the socket */
    if (o->last_snd_wnd != snd_wnd)
        o->last_snd_wnd = snd_wnd;
    if (o->last_rcv_wnd != rcv_wnd)
        o->last_rcv_wnd = rcv_wnd;
    if (!type)
        return 0;
    o->last_probe_ns = now;
    struct tcp_event *e = tcp_reserve(type, sk, o);
    if (!e)
        return 0;
    u16 fam = 0, port = 0;
    from_sockaddr(args->saddr, &fam, &port, e->saddr);
    from_sockaddr(args->daddr, &fam, &port, e->daddr);
    e->family = args->family;
    e->sport = args->sport;
    e->dport = args->dport;
    e->srtt_us = args->srtt;
    e->snd_wnd = args->snd_wnd;
    e->rcv_wnd = args->rcv_wnd;
    e->snd_cwnd = args->snd_cwnd;
    struct tuple_key tk = {};
    __builtin_memcpy(tk.saddr, e->saddr, 16);
    __builtin_memcpy(tk.daddr, e->daddr, 16);
    tk.sport = e->sport;
    tk.dport = e->dport;
    tk.family = e->family;
    own_tuple(o, &tk);
    if (type == TCP_EV_ZERO_WINDOW)
        count_peer(type, e->family, e->daddr, e->dport);
    tcp_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
    u64 sk = (u64)args->skaddr;
    struct sk_owner *o = sk_owner.lookup(&sk);
    if (!o)
        return 0;
    struct tcp_event *e = tcp_reserve(TCP_EV_RETRANSMIT, sk, o);
    if (!e)
        return 0;
    e->family = args->family;
    e->sport = args->sport;
    e->dport = args->dport;
    e->oldstate = e->newstate = args->state;
    if (args->family == AF_INET_) {
        __builtin_memcpy(e->saddr, args->saddr, 4);
        __builtin_memcpy(e->daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, args->saddr_v6, 16);
        __builtin_memcpy(e->daddr, args->daddr_v6, 16);
    }
    count_peer(TCP_EV_RETRANSMIT, e->family, e->daddr, e->dport);
    tcp_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_send_reset)
{
    u64 sk = (u64)args->skaddr;
    struct sk_owner *o = sk ? sk_owner.lookup(&sk) : 0;
    if (!o)
        return 0;
    struct tcp_event *e = tcp_reserve(TCP_EV_RESET_SENT, sk, o);
    if (!e)
        return 0;
    u16 fam = 0;
    from_sockaddr(args->saddr, &fam, &e->sport, e->saddr);
    from_sockaddr(args->daddr, &e->family, &e->dport, e->daddr);
    e->oldstate = e->newstate = args->state;
    count_peer(TCP_EV_RESET_SENT, e->family, e->daddr, e->dport);
    tcp_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_receive_reset)
{
    u64 sk = (u64)args->skaddr;
    struct sk_owner *o = sk_owner.lookup(&sk);
    if (!o)
        return 0;
    struct tcp_event *e = tcp_reserve(TCP_EV_RESET_RECEIVED, sk, o);
    if (!e)
        return 0;
    /* SYN_SENT: the connect was refused; ESTABLISHED etc.: a reset mid-stream */
    e->oldstate = e->newstate = o->state;
    e->family = args->family;
    e->sport = args->sport;
    e->dport = args->dport;
    if (args->family == AF_INET_) {
        __builtin_memcpy(e->saddr, args->saddr, 4);
        __builtin_memcpy(e->daddr, args->daddr, 4);
    } else {
        __builtin_memcpy(e->saddr, args->saddr_v6, 16);
        __builtin_memcpy(e->daddr, args->daddr_v6, 16);
    }
    count_peer(TCP_EV_RESET_RECEIVED, e->family, e->daddr, e->dport);
    tcp_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}

/* The 4-tuple of a sock tracepoint's args: inet_sock_set_state and inet_sk_error_report
 * have the same fields in different structs, hence a macro, not a function. */
#define TUPLE_FROM_ARGS(tk, a)                                  \
    do {                                                        \
        (tk).family = (a)->family;                              \
        (tk).sport = (a)->sport;                                \
        (tk).dport = (a)->dport;                                \
        if ((a)->family == AF_INET_) {                          \
            __builtin_memcpy((tk).saddr, (a)->saddr, 4);        \
            __builtin_memcpy((tk).daddr, (a)->daddr, 4);        \
        } else {                                                \
            __builtin_memcpy((tk).saddr, (a)->saddr_v6, 16);    \
            __builtin_memcpy((tk).daddr, (a)->daddr_v6, 16);    \
        }                                                       \
    } while (0)

/* The new states an ordinary connection's life reaches from `old` (a connect, an accept,
 * either side closing, a listener); anything else says something: a connect that failed
 * (SYN_SENT → CLOSE), an abort or a reset (ESTABLISHED, SYN_RECV, FIN_WAIT1, CLOSE_WAIT →
 * CLOSE), ...  Those are the events the kernel still emits. */
static __always_inline u32 ordinary_next(int old)
{
    switch (old) {
    case TCP_CLOSE_:
        return B_(TCP_SYN_SENT_) | B_(TCP_LISTEN_);
    case TCP_LISTEN_:
        return B_(TCP_SYN_RECV_) | B_(TCP_CLOSE_);
    case TCP_SYN_SENT_:
    case TCP_SYN_RECV_:
    case TCP_NEW_SYN_RECV_:
        return B_(TCP_ESTABLISHED_);
    case TCP_ESTABLISHED_:
        return B_(TCP_FIN_WAIT1_) | B_(TCP_CLOSE_WAIT_);
    case TCP_FIN_WAIT1_:
        return B_(TCP_FIN_WAIT2_) | B_(TCP_CLOSING_) | B_(TCP_TIME_WAIT_);
    case TCP_FIN_WAIT2_:
    case TCP_CLOSING_:
        return B_(TCP_TIME_WAIT_) | B_(TCP_CLOSE_); /* CLOSE: tcp_done after the tw hand-off */
    case TCP_CLOSE_WAIT_:
        return B_(TCP_LAST_ACK_);
    case TCP_LAST_ACK_:
    case TCP_TIME_WAIT_:
        return B_(TCP_CLOSE_);
    }
    return 0;
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != IPPROTO_TCP_)
        return 0;
    u64 sk = (u64)args->skaddr;
    int old_st = args->oldstate, new_st = args->newstate;
    if (old_st == TCP_CLOSE_ && new_st == TCP_SYN_SENT_)
        learn_owner(sk);
    struct sk_owner *o = sk_owner.lookup(&sk);
    if (!o)
        return 0;
    o->state = new_st;
    if (old_st > 0 && old_st < TCP_STATE_SLOTS && new_st > 0 && new_st < TCP_STATE_SLOTS) {
        u32 idx = old_st * TCP_STATE_SLOTS + new_st;
        u64 *n = tcp_state_counts.lookup(&idx);
        if (n)
            *n += 1;
    }
    /* the 4-tuple's owner is kept on every transition, emitted or not */
    struct tuple_key tk = {};
    TUPLE_FROM_ARGS(tk, args);
    if (new_st != TCP_CLOSE_)
        own_tuple(o, &tk);
    else if (o->tuple_set)
        tuple_owner.delete(&tk);
    u32 next = (old_st >= 0 && old_st < 32) ? ordinary_next(old_st) : 0;
    int ordinary = new_st >= 0 && new_st < 32 && (next & (1u << new_st));
    if (!ordinary || cfg(CFG_TCP_STATES_ALL)) {
        struct tcp_event *e = tcp_reserve(TCP_EV_STATE, sk, o);
        if (e) {
            e->family = tk.family;
            e->sport = tk.sport;
            e->dport = tk.dport;
            e->oldstate = old_st;
            e->newstate = new_st;
            __builtin_memcpy(e->saddr, tk.saddr, 16);
            __builtin_memcpy(e->daddr, tk.daddr, 16);
            tcp_events.ringbuf_submit(e, wakeup_flags());
        }
    }
    if (new_st == TCP_CLOSE_)
        sk_owner.delete(&sk);
    return 0;
}

TRACEPOINT_PROBE(sock, inet_sk_error_report)
{
    if (args->protocol != IPPROTO_TCP_)
        return 0;
    struct tuple_key tk = {};
    TUPLE_FROM_ARGS(tk, args);
    u32 *pid = tuple_owner.lookup(&tk);
    if (!pid) /* current is no evidence here: this usually runs in softirq */
        return 0;
    struct sk_owner o = {.pid = *pid};
    struct tcp_event *e = tcp_reserve(TCP_EV_ERROR, 0, &o);
    if (!e)
        return 0;
    e->family = tk.family;
    e->sport = tk.sport;
    e->dport = tk.dport;
    __builtin_memcpy(e->saddr, tk.saddr, 16);
    __builtin_memcpy(e->daddr, tk.daddr, 16);
    e->newstate = args->error;
    tcp_events.ringbuf_submit(e, wakeup_flags());
    return 0;
}
