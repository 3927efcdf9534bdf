package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// sink keeps CPU loops from being optimised away.
var sink atomic.Uint64

// app holds what the scenario handlers share.
type app struct {
	bg       *detached
	spin     *spinPool
	backend  *tcpBackend
	grpc     *grpcDemo
	dataDir  string
	selfURL  string // base URL of this service, for /downstream
	downHTTP *http.Client
}

// result is the JSON every scenario answers: what was asked and what happened.
type result map[string]any

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// intParam reads an integer query parameter with a default and bounds, so a typo cannot
// make a handler spin for hours.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s: expected an integer in [%d, %d], got %q", name, lo, hi, s)
	}
	return v, nil
}

// expectedCause is the goblock.cause each scenario injects (DESIGN §3 vocabulary;
// "none" for the control). It is recorded on the server span as demo.expected_cause so
// a test can compare otel-goblock's diagnosis with the truth without a table of its own.
var expectedCause = map[string]string{
	"sleep": "sleep", "mutex": "lock", "chan": "channel", "select": "channel",
	"net": "network", "downstream": "network", "fsync": "disk", "syscall": "syscall",
	"cpu": "runqueue", "gc": "gc_assist", "fanout": "network",
	"grpc/unary": "none", "grpc/flow": "grpc_flow_control", "grpc/keepalive": "grpc_keepalive",
}

// scenario adapts a handler that returns (result, error), times it, and labels the
// otelhttp server span with the route and the scenario's ground truth.
func scenario(name string, f func(r *http.Request) (result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, route, _ := strings.Cut(r.Pattern, " ")
		trace.SpanFromContext(r.Context()).SetAttributes(
			attribute.String("http.route", route),
			attribute.String("demo.scenario", name),
			attribute.String("demo.expected_cause", expectedCause[name]),
		)
		start := time.Now()
		res, err := f(r)
		if res == nil {
			res = result{}
		}
		res["scenario"] = name
		res["expected_cause"] = expectedCause[name]
		res["trace_id"] = trace.SpanContextFromContext(r.Context()).TraceID().String()
		res["elapsed_ms"] = msSince(start)
		if err != nil {
			res["error"] = err.Error()
			writeJSON(w, http.StatusInternalServerError, res)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// routes registers every scenario; the patterns become the server span names ("GET /sleep").
func (a *app) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sleep", scenario("sleep", a.sleep))
	mux.HandleFunc("GET /mutex", scenario("mutex", a.mutex))
	mux.HandleFunc("GET /chan", scenario("chan", a.channel))
	mux.HandleFunc("GET /select", scenario("select", a.selectCase))
	mux.HandleFunc("GET /net", scenario("net", a.network))
	mux.HandleFunc("GET /downstream", scenario("downstream", a.downstream))
	mux.HandleFunc("GET /fsync", scenario("fsync", a.fsync))
	mux.HandleFunc("GET /syscall", scenario("syscall", a.syscallRead))
	mux.HandleFunc("GET /cpu", scenario("cpu", a.cpu))
	mux.HandleFunc("GET /gc", scenario("gc", a.gc))
	mux.HandleFunc("GET /fanout", scenario("fanout", a.fanout))
	mux.HandleFunc("GET /grpc/unary", scenario("grpc/unary", a.grpcUnary))
	mux.HandleFunc("GET /grpc/flow", scenario("grpc/flow", a.grpcFlow))
	mux.HandleFunc("GET /grpc/keepalive", scenario("grpc/keepalive", a.grpcKeepalive))
}

const maxMs = 60_000

// /sleep?ms=N — time.Sleep [sleep].
func (a *app) sleep(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return result{"ms": ms}, nil
}

// /mutex?ms=N — a detached goroutine takes a fresh mutex and holds it ms; the handler waits
// until the holder has it, then Locks: it blocks in sync.Mutex for about ms [lock].
func (a *app) mutex(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	held := make(chan struct{})
	a.bg.run(func() {
		mu.Lock()
		close(held)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		mu.Unlock()
	})
	<-held
	start := time.Now()
	mu.Lock()
	waited := msSince(start)
	mu.Unlock()
	return result{"ms": ms, "lock_wait_ms": waited}, nil
}

// /chan?ms=N — a detached worker answers on a channel after ms; the handler blocks in a
// channel receive [channel].
func (a *app) channel(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	ch := make(chan int)
	a.bg.run(func() {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		ch <- ms
	})
	v := <-ch
	return result{"ms": ms, "received": v}, nil
}

// /select?ms=N — select over two channels and a timeout timer; the first channel answers
// after ms, the second never, the timer (ms*10 + 1 s) only guards against a hang [channel].
func (a *app) selectCase(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	answer := make(chan int, 1)
	never := make(chan int)
	a.bg.run(func() {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		answer <- ms
	})
	timeout := time.NewTimer(time.Duration(ms)*10*time.Millisecond + time.Second)
	defer timeout.Stop()
	select {
	case v := <-answer:
		return result{"ms": ms, "case": "answer", "received": v}, nil
	case <-never:
		return result{"ms": ms, "case": "never"}, nil
	case <-timeout.C:
		return result{"ms": ms, "case": "timeout"}, fmt.Errorf("select timed out")
	}
}

// /net?ms=N — a TCP round trip to the loopback backend, which answers after ms; the handler
// parks in the netpoller [network].
func (a *app) network(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	reply, err := callBackend(a.backend.addr(), ms)
	return result{"ms": ms, "backend": a.backend.addr(), "reply": reply}, err
}

// /downstream?ms=N — an otelhttp client call to this service's own /sleep?ms=N: one trace
// holds this server span, the client span and the /sleep server span. Keep-alives are off,
// so each call dials a connection whose transport goroutines start inside the span
// [network on the client-side spans].
func (a *app) downstream(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet,
		fmt.Sprintf("%s/sleep?ms=%d", a.selfURL, ms), nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.downHTTP.Do(req)
	if err != nil {
		return result{"ms": ms}, err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return result{"ms": ms, "status": resp.StatusCode, "downstream": body}, nil
}

// /fsync?ms=N — write 4 KiB and fsync, in a loop, until about ms have passed [disk].
// The file lives in -data-dir (not tmpfs, or fsync would cost nothing).
func (a *app) fsync(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(a.dataDir, "fsync-*.dat")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	n := 0
	var syncTime time.Duration
	for n == 0 || time.Now().Before(deadline) {
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := f.Sync(); err != nil {
			return nil, err
		}
		syncTime += time.Since(t0)
		n++
	}
	return result{
		"ms": ms, "fsyncs": n, "fsync_ms": float64(syncTime.Microseconds()) / 1000,
		"file": filepath.Base(f.Name()),
	}, nil
}

// /syscall?ms=N — a blocking read(2) on a pipe outside the netpoller (blocking fds, raw
// syscall.Read); a detached helper writes to the pipe after ms [syscall].
func (a *app) syscallRead(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	defer syscall.Close(p[0])
	a.bg.run(func() {
		defer syscall.Close(p[1])
		time.Sleep(time.Duration(ms) * time.Millisecond)
		_, _ = syscall.Write(p[1], []byte("x"))
	})
	buf := make([]byte, 1)
	n, err := syscall.Read(p[0], buf)
	return result{"ms": ms, "read": n}, err
}

// /cpu?ms=N&spinners=K&mode=go|host — about ms of this goroutine's own CPU time (measured
// with the thread CPU clock while locked to its thread) while K spinners (default 2×CPUs)
// compete for the CPUs for the request's duration [runqueue]. Wall time exceeds ms by the
// time spent runnable but not running:
//   - mode=go (default): spinner goroutines locked to OS threads take Go's Ps, so the
//     handler mostly waits in Go's run queue (its thread sleeps while it waits for a P);
//   - mode=host: spinner processes (this binary's `spin` subcommand, started with the
//     service and idle until needed, see spinpool.go) saturate the host's CPUs, so the
//     handler's thread waits in the kernel's run queue.
//
// The answer carries os_runqueue_ms, the thread's run-queue delay from
// /proc/thread-self/schedstat, to tell the two apart.
func (a *app) cpu(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	spinners, err := intParam(r, "spinners", 2*runtime.NumCPU(), 0, 256)
	if err != nil {
		return nil, err
	}
	mode := r.URL.Query().Get("mode")
	switch mode {
	case "", "go":
		mode = "go"
		stop := make(chan struct{})
		for i := 0; i < spinners; i++ {
			a.bg.run(func() { spinUntil(stop) })
		}
		defer close(stop)
	case "host":
		defer a.spin.run(spinners)()
	default:
		return nil, fmt.Errorf("mode: expected go or host, got %q", mode)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, rq0 := threadCPU(), threadRunDelay()
	want := time.Duration(ms) * time.Millisecond
	wallCap := time.Now().Add(20*want + 10*time.Second)
	x := uint64(1)
	// Check the clock (a real syscall, clock_gettime has no vDSO path for thread CPU time)
	// only every ~0.5 ms of work, so the handler's time is CPU, not syscalls.
	for threadCPU()-cpu0 < want && time.Now().Before(wallCap) {
		for i := 0; i < 500000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink.Add(x)
	return result{
		"ms": ms, "spinners": spinners, "mode": mode,
		"cpu_ms":         float64((threadCPU() - cpu0).Microseconds()) / 1000,
		"os_runqueue_ms": float64((threadRunDelay() - rq0).Microseconds()) / 1000,
	}, nil
}

// threadRunDelay is the calling thread's total time spent runnable on a kernel run queue
// (second field of /proc/thread-self/schedstat); 0 when schedstats are unavailable.
func threadRunDelay() time.Duration {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(ns)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// gcLive is a pointer-dense live heap kept across requests: it makes every GC cycle's mark
// phase long, so a goroutine allocating during it is drafted into mark assists.
var (
	gcLiveOnce sync.Once
	gcLive     []*node
)

type node struct {
	next *node
	pad  [6]*int
}

func buildLiveHeap() {
	const lists, per = 64, 16384 // ~64 MiB of 64-byte nodes (1M objects)
	gcLive = make([]*node, lists)
	for i := range gcLive {
		var head *node
		for j := 0; j < per; j++ {
			head = &node{next: head}
		}
		gcLive[i] = head
	}
}

// lowGOGC sets GOGC for as long as at least one /gc request runs and returns the undo:
// a small GOGC keeps a GC cycle running nearly all the time, so the allocating handler
// spends most of its time in mark assists rather than in its own allocation code.
var (
	gcMu      sync.Mutex
	gcActive  int
	gcPercent int
)

func lowGOGC(percent int) func() {
	gcMu.Lock()
	defer gcMu.Unlock()
	if gcActive == 0 {
		gcPercent = debug.SetGCPercent(percent)
	}
	gcActive++
	return func() {
		gcMu.Lock()
		defer gcMu.Unlock()
		gcActive--
		if gcActive == 0 {
			debug.SetGCPercent(gcPercent)
		}
	}
}

var gcSamples = []metrics.Sample{
	{Name: "/gc/cycles/total:gc-cycles"},
	{Name: "/cpu/classes/gc/mark/assist:cpu-seconds"},
	{Name: "/cpu/classes/gc/pause:cpu-seconds"},
}

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func readGC() (cycles uint64, assist, pause float64) {
	s := make([]metrics.Sample, len(gcSamples))
	copy(s, gcSamples)
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Float64(), s[2].Value.Float64()
}

// /gc?ms=N&size=B&gogc=G — with GOGC lowered to G (default 10) for the request, allocate
// short-lived pointer slices of B bytes (default 32 KiB) for about ms (and at least one
// full GC cycle) over a ~64 MiB live
// heap: GC cycles run back to back and the allocating goroutine spends most of its time in
// mark assists [gc_assist, or gc_stw]. The response carries the runtime's own counters
// (process-wide), so a test can see how much assist really happened.
func (a *app) gc(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	size, err := intParam(r, "size", 32768, 16, 1<<20)
	if err != nil {
		return nil, err
	}
	gogc, err := intParam(r, "gogc", 10, 1, 1000)
	if err != nil {
		return nil, err
	}
	gcLiveOnce.Do(buildLiveHeap)
	defer lowGOGC(gogc)()
	c0, a0, p0 := readGC()
	deadline := time.Now().Add(time.Duration(ms) * time.Millisecond)
	// Pointer slices: every byte allocated is scan work, which is what the pacer charges
	// to the allocating goroutine as assist credit.
	keep := make([][]*node, 256)
	allocs := 0
	// Run for ms and until at least one GC cycle has completed (bounded): on a busy host the
	// handler may get too little CPU in ms to reach the next GC trigger.
	wallCap := time.Now().Add(10*time.Duration(ms)*time.Millisecond + 10*time.Second)
	for allocs == 0 || time.Now().Before(deadline) || (gcCycles() == c0 && time.Now().Before(wallCap)) {
		for i := 0; i < 16; i++ {
			keep[(allocs+i)%len(keep)] = make([]*node, size/8)
		}
		allocs += 16
	}
	c1, a1, p1 := readGC()
	return result{
		"ms": ms, "size": size, "gogc": gogc, "allocations": allocs, "gc_cycles": c1 - c0,
		"assist_cpu_ms": (a1 - a0) * 1000, "pause_cpu_ms": (p1 - p0) * 1000,
	}, nil
}

// /fanout?ms=N&n=K — an errgroup of K child goroutines, each a backend round trip of ms.
// The handler waits on the group (WaitGroup semaphore); its children wait on the network:
// the cause is found through goroutine lineage [network].
func (a *app) fanout(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 0, maxMs)
	if err != nil {
		return nil, err
	}
	n, err := intParam(r, "n", 4, 1, 256)
	if err != nil {
		return nil, err
	}
	g, _ := errgroup.WithContext(r.Context())
	for i := 0; i < n; i++ {
		g.Go(func() error {
			_, err := callBackend(a.backend.addr(), ms)
			return err
		})
	}
	err = g.Wait()
	return result{"ms": ms, "n": n}, err
}

// /grpc/unary — one fast unary RPC; the control, nothing blocks.
func (a *app) grpcUnary(r *http.Request) (result, error) {
	reply, err := a.grpc.callUnary(r.Context())
	return result{"reply": reply, "method": methodUnary}, err
}

// /grpc/flow?ms=N&kib=K — send K KiB in 16 KiB messages to a server reading one message per
// ms: the sender waits on the 64 KiB stream window [grpc_flow_control on the client span].
func (a *app) grpcFlow(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 50, 0, maxMs)
	if err != nil {
		return nil, err
	}
	kib, err := intParam(r, "kib", 256, 1, 64*1024)
	if err != nil {
		return nil, err
	}
	res, err := a.grpc.callFlow(r.Context(), ms, kib*1024)
	return result{
		"ms": ms, "kib": kib, "window_bytes": window, "method": methodUpload,
		"messages": res.Messages, "bytes": res.Bytes, "send_ms": res.SendMs,
		"total_ms": res.TotalMs, "reply": res.Reply,
	}, err
}

// /grpc/keepalive?ms=N — a client pinging every ms against a server that allows one ping
// per 5 min; the RPC ends with the connection torn down by GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings" [grpc_keepalive]. That ending is the expected outcome (HTTP 200);
// anything else is an error (HTTP 500).
func (a *app) grpcKeepalive(r *http.Request) (result, error) {
	ms, err := intParam(r, "ms", 100, 10, maxMs)
	if err != nil {
		return nil, err
	}
	err = a.grpc.callKeepalive(r.Context(), ms)
	res := result{"ms": ms, "method": methodHang}
	if err == nil {
		return res, fmt.Errorf("the hanging RPC returned without a GOAWAY")
	}
	res["grpc_error"] = err.Error()
	res["too_many_pings"] = strings.Contains(err.Error(), "too_many_pings")
	if !res["too_many_pings"].(bool) {
		return res, fmt.Errorf("RPC failed without too_many_pings: %w", err)
	}
	return res, nil
}

// newDownstreamClient is the otelhttp client of /downstream (no keep-alive, see there).
func newDownstreamClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &http.Client{Transport: otelhttp.NewTransport(tr), Timeout: 2 * time.Minute}
}

// shutdownCtx is a bounded context for the final flush.
func shutdownCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
