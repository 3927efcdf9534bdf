/* Shared between the BPF programs (bpf/<concern>.bpf.c) and the Python decoder
 * (receivers/ebpf/decode.py, whose layouts a test checks against this file).
 *
 * The loader compiles this header plus the enabled *.bpf.c files as ONE BCC module, so
 * the maps declared here (targets, goid cache, config, loss counters) are shared by every
 * program.  Nothing here dereferences a kernel struct by header layout: inputs are
 * tracepoint arguments, user memory, and kernel fields at BTF offsets passed in as -D.
 */
#ifndef GOBLOCK_H
#define GOBLOCK_H

#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

#ifndef GOBLOCK_FSBASE_OFF
#define GOBLOCK_FSBASE_OFF 0 /* task_struct.thread.fsbase from BTF; 0 = goid unknown */
#endif
#ifndef GOBLOCK_RING_PAGES
#define GOBLOCK_RING_PAGES 256 /* per ring buffer, power of two */
#endif

/* fd → file → inode walk, offsets from BTF (-D from the loader; 0 = unknown, no walk):
 * task_struct.files, files_struct.fdt, fdtable.{fd,max_fds}, file.{f_inode,f_path.dentry},
 * inode.{i_ino,i_mode}, dentry.d_name.name; for sockets file.private_data, socket.sk,
 * sock.{sk_protocol, __sk_common.skc_*} */
#ifndef GOBLOCK_OFF_TASK_FILES
#define GOBLOCK_OFF_TASK_FILES 0
#define GOBLOCK_OFF_FILES_FDT 0
#define GOBLOCK_OFF_FDT_FD 0
#define GOBLOCK_OFF_FDT_MAX 0
#define GOBLOCK_OFF_FILE_INODE 0
#define GOBLOCK_OFF_FILE_DENTRY 0
#define GOBLOCK_OFF_INODE_INO 0
#define GOBLOCK_OFF_INODE_MODE 0
#define GOBLOCK_OFF_DENTRY_NAME 0
#endif
#ifndef GOBLOCK_OFF_FILE_PRIVATE
#define GOBLOCK_OFF_FILE_PRIVATE 0
#define GOBLOCK_OFF_SOCKET_SK 0
#define GOBLOCK_OFF_SK_PROTOCOL 0
#define GOBLOCK_OFF_SKC_FAMILY 0
#define GOBLOCK_OFF_SKC_NUM 0
#define GOBLOCK_OFF_SKC_DPORT 0
#define GOBLOCK_OFF_SKC_RCV_SADDR 0
#define GOBLOCK_OFF_SKC_DADDR 0
#define GOBLOCK_OFF_SKC_V6_RCV_SADDR 0
#define GOBLOCK_OFF_SKC_V6_DADDR 0
#endif
#define GOBLOCK_FD_NAME_LEN 48

/* What fd_name holds for a socket instead of a dentry name (sockets have none): the
 * endpoints the socket had while the syscall held it, read from its struct sock. User space
 * used to walk /proc/<pid>/net/{tcp,udp}{,6} for each new socket: a few ms of kernel time
 * per walk that a PREEMPT_NONE kernel does not interrupt, which the observed app felt as
 * wakeup latency. The first byte (1) is never the first byte of a dentry name. */
#define GOBLOCK_FD_SOCKADDR 1
struct fd_sockaddr {
    u8 tag;         /* GOBLOCK_FD_SOCKADDR */
    u8 protocol;    /* IPPROTO_TCP, IPPROTO_UDP, ... */
    u16 family;     /* AF_INET, AF_INET6 (others: no addresses) */
    u16 sport;      /* host order */
    u16 dport;      /* host order */
    u8 saddr[16];   /* AF_INET: the first 4 bytes */
    u8 daddr[16];
};

#define GOBLOCK_MAX_TIDS 65536
#define GOBLOCK_HIST_SLOTS 32  /* log2(µs) slots */
/* Histograms are per-CPU arrays (summed over CPUs by the reader): an inlined array
 * lookup and a plain increment, where a hash map cost a hash, a bucket walk and an atomic
 * on a line every CPU writes.  Syscall histograms are indexed by nr * SLOTS + slot for
 * nr < GOBLOCK_SYSCALL_NR_MAX (x86_64 and arm64 numbers are below 512; x32 ones, bit 30
 * set, are left out of the histogram, not of the events): 128 KiB per CPU. */
#define GOBLOCK_SYSCALL_NR_MAX 512
/* sched histogram series (index series * SLOTS + slot) */
#define SCHED_HIST_RUNQ 0
#define SCHED_HIST_OFFCPU_BLOCKED 1
#define SCHED_HIST_OFFCPU_PREEMPTED 2
#define SCHED_HIST_SERIES 3

/* config array indices (written by Python at start) */
#define CFG_SYSCALL_THRESHOLD_NS 0
#define CFG_OFFCPU_THRESHOLD_NS 1
#define CFG_TCP_PROBE_INTERVAL_NS 2
#define CFG_PARK_THRESHOLD_NS 3
#define CFG_ASSIST_THRESHOLD_NS 4
#define CFG_NETPOLL_PEERS 5 /* 1: emit EAGAIN socket syscalls of Go targets */
#define CFG_TCP_STATES_ALL 6 /* 1: emit every TCP state change; 0: only the unusual ones */
#define CFG_TCP_PROBE_MIN_AGE_NS 7 /* a socket's first probe sample: once owned this long */
#define CFG_MAX 8

/* loss counter indices (per-CPU array) */
#define LOST_SYSCALL 0
#define LOST_SCHED 1
#define LOST_TCP 2
#define LOST_PROC 3
#define LOST_GO 4
#define LOST_MAX 5

/* sched event kinds */
#define SCHED_OFFCPU 1
#define SCHED_RUNQ 2
/* off-CPU states */
#define OFFCPU_BLOCKED 1
#define OFFCPU_PREEMPTED 2
/* run-queue entry causes */
#define RUNQ_WAKEUP 1
#define RUNQ_PREEMPTED 2
#define RUNQ_NEW 3

/* tcp event types */
#define TCP_EV_RETRANSMIT 1
#define TCP_EV_RESET_SENT 2
#define TCP_EV_RESET_RECEIVED 3
#define TCP_EV_STATE 4
#define TCP_EV_PROBE 5
#define TCP_EV_ZERO_WINDOW 6
#define TCP_EV_ERROR 7

/* TCP state-change counters (per-CPU array, index old * TCP_STATE_SLOTS + new; Linux
 * TCP states are 1..12) */
#define TCP_STATE_SLOTS 16

/* proc event kinds */
#define PROC_EXEC 1
#define PROC_EXIT 2

#define GOBLOCK_FILENAME_LEN 128

/* value of the `targets` map (key: tgid) */
struct target_info {
    u32 goid_off;  /* offset of g.goid in this binary's runtime.g; 0 = not Go */
    u32 flags;
};

struct syscall_event {
    u64 start_ns;   /* CLOCK_MONOTONIC */
    u64 end_ns;
    u64 goid;
    s64 ret;
    u64 arg0;       /* first argument: the fd for fd-taking syscalls */
    u32 pid;
    u32 tid;
    u32 nr;
    u32 mode;       /* i_mode of the file arg0 named at sys_exit (0 = not an open fd) */
    u64 ino;        /* its inode number */
    char fd_name[GOBLOCK_FD_NAME_LEN]; /* its dentry name (basename, "[eventpoll]", ...) */
};

struct sched_event {
    u64 start_ns;
    u64 end_ns;
    u64 goid;       /* cached from the thread's last sys_enter (user reads fail here) */
    u64 runq_ns;    /* offcpu: the runnable part of the interval */
    u32 pid;
    u32 tid;
    u8 kind;        /* SCHED_OFFCPU | SCHED_RUNQ */
    u8 state;       /* offcpu: OFFCPU_*; runq: RUNQ_* */
    u8 _pad[6];
};

struct tcp_event {
    u64 ts_ns;
    u64 skaddr;
    u32 pid;        /* owner learned in process context; 0 if unknown */
    u32 tid;
    u32 srtt_us;
    u32 snd_wnd;
    u32 rcv_wnd;
    u32 snd_cwnd;
    s32 oldstate;
    s32 newstate;   /* also: the error for TCP_EV_ERROR */
    u16 family;
    u16 sport;      /* host byte order */
    u16 dport;
    u8 type;        /* TCP_EV_* */
    u8 _pad;
    u8 saddr[16];
    u8 daddr[16];
};

struct proc_event {
    u64 ts_ns;
    u32 pid;
    u32 tid;
    u8 kind;        /* PROC_EXEC | PROC_EXIT */
    u8 _pad[7];
    char comm[16];
    char filename[GOBLOCK_FILENAME_LEN];
};

/* Go's internal register ABI, for the uprobe programs (goruntime, grpc): the current g
 * in R14 (amd64) / R28 (arm64); integer arguments and results in AX BX CX DI SI R8-R11 /
 * R0-R15. On system-stack functions the g register holds g0: use a gp argument. */
#ifdef GOBLOCK_ARCH_ARM64
#define GO_G(ctx) ((ctx)->regs[28])
#define GO_ARG1(ctx) ((ctx)->regs[0])
#define GO_ARG2(ctx) ((ctx)->regs[1])
#define GO_ARG3(ctx) ((ctx)->regs[2])
#define GO_ARG4(ctx) ((ctx)->regs[3])
#define GO_RET1(ctx) ((ctx)->regs[0])
#else
#define GO_G(ctx) ((ctx)->r14)
#define GO_ARG1(ctx) ((ctx)->ax)
#define GO_ARG2(ctx) ((ctx)->bx)
#define GO_ARG3(ctx) ((ctx)->cx)
#define GO_ARG4(ctx) ((ctx)->di)
#define GO_RET1(ctx) ((ctx)->ax)
#endif

/* g.goid of the goroutine at `g` (offset per binary, from DWARF or the version table) */
static __always_inline u64 go_goid(u64 g, u32 off)
{
    u64 goid = 0;
    if (g && off)
        bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + off));
    return goid;
}

/* Go runtime uprobe records (bpf/goruntime.bpf.c) */
#define GO_PARK 1       /* interval: goroutine parked with `reason` (waitReason) */
#define GO_STW 2        /* interval: stop-the-world, `reason` = stwReason */
#define GO_ASSIST 3     /* interval: gcAssistAlloc on goroutine `goid` */
#define GO_LINEAGE 4    /* instant: `aux` (parent goid) created `goid` */
#define GO_SPAN_END 5   /* instant: span (trace_id, span_id) ended on `goid` */
#define GO_GC_START 6   /* instant: a GC cycle starts */
#define PARK_END_READY 1    /* go_event.flags: runtime.ready made it runnable */
#define PARK_END_RESUMED 2  /* seen running again (syscall, span end): netpoll wakeups */

struct go_event {
    u64 start_ns;   /* CLOCK_MONOTONIC */
    u64 end_ns;
    u64 goid;
    u64 aux;        /* GO_LINEAGE: parent goid */
    u32 pid;
    u32 tid;
    u8 kind;        /* GO_* */
    u8 reason;      /* waitReason / stwReason as numbered by this binary */
    u8 flags;       /* GO_PARK: PARK_END_* */
    u8 _pad[5];
    u8 trace_id[16];
    u8 span_id[8];
};

/* key of the per-peer TCP trouble counters (rare events: a hash) */
struct tcp_count_key {
    u8 daddr[16];
    u16 family;
    u16 dport;
    u8 type;
    u8 _pad[3];
};

/* ---- shared maps ---- */
BPF_HASH(targets, u32, struct target_info, 4096);

/* Per target thread, in task-local storage (created by the syscalls program at a target
 * thread's sys_enter, freed by the kernel with the task): the syscall in flight, and the
 * goroutine id read at the thread's last sys_enter.  The scheduler program copies that
 * goid at switch-out, where `current` is the thread (it cannot read user memory itself,
 * DESIGN §4); a thread makes no syscall while off-CPU, so it is still the goid at
 * switch-in. */
struct thread_state {
    u64 ts;         /* sys_enter of the syscall in flight; 0 = none */
    u64 arg0;
    u64 goid;
    u32 nr;
    u32 _pad;
};
BPF_TASK_STORAGE(thread_state, struct thread_state);
BPF_ARRAY(config, u64, CFG_MAX);
BPF_PERCPU_ARRAY(lost, u64, LOST_MAX);

/* Wakeups are batched: a record is submitted without waking the consumer except every
 * GOBLOCK_WAKEUP_EVERY-th record on a CPU; the poll thread also drains on its own timer
 * (poll_interval).  Waking Python once per record cost ~10 % of a core at a few thousand
 * events/s.  The loader sets GOBLOCK_WAKEUP_EVERY so that all CPUs together fill at most
 * a quarter of a ring before one of them wakes the reader (ring records / (4 × CPUs)):
 * a fixed count (256) woke the reader ~400 times/s at 100k events/s on 2 CPUs, and on a
 * host with many CPUs let a ring fill before any CPU reached its count. */
#define GOBLOCK_RB_NO_WAKEUP 1
#define GOBLOCK_RB_FORCE_WAKEUP 2
#ifndef GOBLOCK_WAKEUP_EVERY
#define GOBLOCK_WAKEUP_EVERY 256
#endif
BPF_PERCPU_ARRAY(submits, u64, 1);

static __always_inline u64 wakeup_flags(void)
{
    u32 zero = 0;
    u64 *n = submits.lookup(&zero);
    if (!n)
        return 0;
    (*n)++;
    return (*n % GOBLOCK_WAKEUP_EVERY) == 0 ? GOBLOCK_RB_FORCE_WAKEUP : GOBLOCK_RB_NO_WAKEUP;
}

static __always_inline u64 cfg(u32 idx)
{
    u64 *v = config.lookup(&idx);
    return v ? *v : 0;
}

static __always_inline void count_lost(u32 idx)
{
    u64 *v = lost.lookup(&idx);
    if (v)
        (*v)++;
}

/* floor(log2(µs)) of a duration (0 for < 2 µs), clamped to the histogram's slots: a
 * six-step binary search, not a 31-step shift loop */
static __always_inline u32 hist_slot(u64 ns)
{
    u64 v = ns / 1000;
    u32 r = 0, s;
    s = (v > 0xFFFFFFFFULL) << 5;
    v >>= s;
    r |= s;
    s = (v > 0xFFFF) << 4;
    v >>= s;
    r |= s;
    s = (v > 0xFF) << 3;
    v >>= s;
    r |= s;
    s = (v > 0xF) << 2;
    v >>= s;
    r |= s;
    s = (v > 0x3) << 1;
    v >>= s;
    r |= s;
    r |= (u32)(v >> 1);
    return r < GOBLOCK_HIST_SLOTS - 1 ? r : GOBLOCK_HIST_SLOTS - 1;
}

/* the goid of the goroutine on this thread: FS−8 → g → g.goid (user reads; works in
 * sys_enter, fails in sched_switch, DESIGN §4) */
static __always_inline u64 read_goid(u32 goid_off)
{
    if (!goid_off || !GOBLOCK_FSBASE_OFF)
        return 0;
    /* a direct load through the BTF-typed current task (the verifier checks the offset
     * against BTF): no helper call, unlike bpf_probe_read_kernel */
    u64 fsbase = *(u64 *)((char *)bpf_get_current_task_btf() + GOBLOCK_FSBASE_OFF);
    u64 g = 0, goid = 0;
    if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase - 8)) || !g)
        return 0;
    if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + goid_off)))
        return 0;
    return goid;
}

static __always_inline void fd_sockaddr(u64 file, struct fd_sockaddr *a)
{
    u64 sock = 0, sk = 0;
    u16 family = 0, proto = 0, dport = 0;
    if (!GOBLOCK_OFF_SOCKET_SK ||
        bpf_probe_read_kernel(&sock, 8, (void *)(file + GOBLOCK_OFF_FILE_PRIVATE)) || !sock ||
        bpf_probe_read_kernel(&sk, 8, (void *)(sock + GOBLOCK_OFF_SOCKET_SK)) || !sk ||
        bpf_probe_read_kernel(&family, 2, (void *)(sk + GOBLOCK_OFF_SKC_FAMILY)))
        return;
    bpf_probe_read_kernel(&proto, 2, (void *)(sk + GOBLOCK_OFF_SK_PROTOCOL));
    bpf_probe_read_kernel(&a->sport, 2, (void *)(sk + GOBLOCK_OFF_SKC_NUM));
    bpf_probe_read_kernel(&dport, 2, (void *)(sk + GOBLOCK_OFF_SKC_DPORT));
    if (family == 2) { /* AF_INET */
        bpf_probe_read_kernel(a->saddr, 4, (void *)(sk + GOBLOCK_OFF_SKC_RCV_SADDR));
        bpf_probe_read_kernel(a->daddr, 4, (void *)(sk + GOBLOCK_OFF_SKC_DADDR));
    } else if (family == 10) { /* AF_INET6 */
        bpf_probe_read_kernel(a->saddr, 16, (void *)(sk + GOBLOCK_OFF_SKC_V6_RCV_SADDR));
        bpf_probe_read_kernel(a->daddr, 16, (void *)(sk + GOBLOCK_OFF_SKC_V6_DADDR));
    }
    a->dport = (dport >> 8) | (dport << 8); /* skc_dport is network order */
    a->family = family;
    a->protocol = proto;
    a->tag = GOBLOCK_FD_SOCKADDR;
}

/* Identify the file behind `fd` of the current task while the syscall still holds it, so
 * user space can name it even when the app closes the fd right after the syscall (a
 * /proc/<pid>/fd lookup at decode time would be too late).  Kernel fields are read at
 * BTF offsets; any failed read leaves mode = 0. */
static __always_inline void fd_identity(u64 fd, u32 *mode, u64 *ino, char *name)
{
    if (!GOBLOCK_OFF_TASK_FILES || fd > 0xFFFFFF)
        return;
    u64 task = bpf_get_current_task();
    u64 files = 0, fdt = 0, fdarr = 0, file = 0, inode = 0, dentry = 0, dname = 0;
    u32 max_fds = 0;
    u16 imode = 0;
    if (bpf_probe_read_kernel(&files, 8, (void *)(task + GOBLOCK_OFF_TASK_FILES)) || !files)
        return;
    if (bpf_probe_read_kernel(&fdt, 8, (void *)(files + GOBLOCK_OFF_FILES_FDT)) || !fdt)
        return;
    if (bpf_probe_read_kernel(&max_fds, 4, (void *)(fdt + GOBLOCK_OFF_FDT_MAX)) || fd >= max_fds)
        return;
    if (bpf_probe_read_kernel(&fdarr, 8, (void *)(fdt + GOBLOCK_OFF_FDT_FD)) || !fdarr)
        return;
    if (bpf_probe_read_kernel(&file, 8, (void *)(fdarr + fd * 8)) || !file)
        return;
    if (bpf_probe_read_kernel(&inode, 8, (void *)(file + GOBLOCK_OFF_FILE_INODE)) || !inode)
        return;
    if (bpf_probe_read_kernel(&imode, 2, (void *)(inode + GOBLOCK_OFF_INODE_MODE)))
        return;
    bpf_probe_read_kernel(ino, 8, (void *)(inode + GOBLOCK_OFF_INODE_INO));
    *mode = imode | 0x10000; /* bit 16: "an open fd", so a mode of 0 is still told apart */
    if ((imode & 0xF000) == 0xC000) { /* S_IFSOCK */
        fd_sockaddr(file, (struct fd_sockaddr *)name);
        return;
    }
    if (!bpf_probe_read_kernel(&dentry, 8, (void *)(file + GOBLOCK_OFF_FILE_DENTRY)) && dentry &&
        !bpf_probe_read_kernel(&dname, 8, (void *)(dentry + GOBLOCK_OFF_DENTRY_NAME)) && dname)
        bpf_probe_read_kernel_str(name, GOBLOCK_FD_NAME_LEN, (void *)dname);
}

#endif /* GOBLOCK_H */
