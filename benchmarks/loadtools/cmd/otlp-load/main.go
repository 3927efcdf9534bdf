// Command otlp-load is the benchmark's load generator: it sends OTLP/gRPC
// ExportTraceServiceRequests of --spans spans with --attrs attributes each, as fast as the
// target accepts them (or at --rate spans/s), for --duration, and counts the outcome.
//
// Why Go and pre-serialized requests: the generator runs on the core not given to the
// pipeline under test and must cost little per span, so the pipeline is what saturates.
// A handful of distinct requests (--variants, different trace ids) are built once and
// sent round-robin as raw bytes.
//
// A refused request (UNAVAILABLE, RESOURCE_EXHAUSTED) is counted, not retried: the benchmark
// wants to see back-pressure, not hide it. Output: one JSON object on stdout at the end:
//
//	{"sent_requests":..,"accepted_spans":..,"refused_spans":..,"failed_spans":..,"codes":{..},"elapsed_s":..}
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otel-goblock/otel-goblock/benchmarks/loadtools/internal/rawcodec"
)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// buildRequest returns one serialized request shaped like a busy HTTP service's spans.
func buildRequest(rng *rand.Rand, nSpans, nAttrs int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "bench-frontend")
	ra.PutStr("service.version", "1.4.2")
	ra.PutStr("host.name", "bench-host-01")
	ra.PutInt("process.pid", 4242)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.60.0")
	now := time.Now()
	var tid pcommon.TraceID
	for i := 0; i < nSpans; i++ {
		sp := ss.Spans().AppendEmpty()
		if i%8 == 0 { // eight spans per trace
			binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
			binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
		}
		var sid, pid pcommon.SpanID
		binary.LittleEndian.PutUint64(sid[:], rng.Uint64())
		binary.LittleEndian.PutUint64(pid[:], rng.Uint64())
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetParentSpanID(pid)
		sp.SetName(fmt.Sprintf("GET /api/v1/items/{id}#%d", i%16))
		sp.SetKind(ptrace.SpanKindServer)
		st := now.Add(-time.Duration(rng.IntN(1_000_000)) * time.Microsecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Duration(rng.IntN(50_000)) * time.Microsecond)))
		sp.Status().SetCode(ptrace.StatusCodeOk)
		a := sp.Attributes()
		for k := 0; k < nAttrs; k++ {
			switch k % 4 {
			case 0:
				a.PutStr(fmt.Sprintf("http.attr.%d", k), fmt.Sprintf("value-%08x", rng.Uint32()))
			case 1:
				a.PutInt(fmt.Sprintf("http.attr.%d", k), rng.Int64N(100000))
			case 2:
				a.PutBool(fmt.Sprintf("http.attr.%d", k), rng.IntN(2) == 1)
			default:
				a.PutDouble(fmt.Sprintf("http.attr.%d", k), rng.Float64()*1000)
			}
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// rejectedSpans reads partial_success.rejected_spans (field 1 → field 1) from a response.
func rejectedSpans(b []byte) int64 {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0
		}
		b = b[l:]
		if n == 1 && typ == protowire.BytesType {
			ps, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return 0
			}
			for len(ps) > 0 {
				pn, pt, pl := protowire.ConsumeTag(ps)
				if pl < 0 {
					return 0
				}
				ps = ps[pl:]
				if pn == 1 && pt == protowire.VarintType {
					v, _ := protowire.ConsumeVarint(ps)
					return int64(v)
				}
				pl = protowire.ConsumeFieldValue(pn, pt, ps)
				if pl < 0 {
					return 0
				}
				ps = ps[pl:]
			}
			return 0
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return 0
		}
		b = b[l:]
	}
	return 0
}

type result struct {
	SentRequests  int64            `json:"sent_requests"`
	AcceptedSpans int64            `json:"accepted_spans"`
	RefusedSpans  int64            `json:"refused_spans"`
	RejectedSpans int64            `json:"rejected_spans"`
	FailedSpans   int64            `json:"failed_spans"`
	Codes         map[string]int64 `json:"codes"`
	ElapsedS      float64          `json:"elapsed_s"`
	RequestBytes  int              `json:"request_bytes"`
	SpansPerReq   int              `json:"spans_per_request"`
}

func main() {
	target := flag.String("target", "127.0.0.1:4317", "OTLP/gRPC endpoint host:port")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conc := flag.Int("concurrency", 4, "concurrent in-flight requests")
	conns := flag.Int("conns", 1, "gRPC connections (requests spread round-robin)")
	rate := flag.Float64("rate", 0, "total spans/s for this process (0: as fast as accepted)")
	nSpans := flag.Int("spans", 512, "spans per request")
	nAttrs := flag.Int("attrs", 10, "attributes per span")
	variants := flag.Int("variants", 8, "distinct pre-serialized requests")
	seed := flag.Uint64("seed", 1, "random seed (vary per process)")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request deadline")
	flag.Parse()

	rng := rand.New(rand.NewPCG(*seed, 0x9e3779b97f4a7c15))
	reqs := make([][]byte, *variants)
	for i := range reqs {
		reqs[i] = buildRequest(rng, *nSpans, *nAttrs)
	}
	cc := make([]*grpc.ClientConn, *conns)
	for i := range cc {
		c, err := grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawcodec.Codec{}), grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		cc[i] = c
	}

	var sent, accepted, refused, rejected, failed atomic.Int64
	var mu sync.Mutex
	codeCounts := map[string]int64{}

	// Pacing: with --rate, a shared ticker hands out request tokens; without, workers loop.
	var tokens chan struct{}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	if *rate > 0 {
		tokens = make(chan struct{}, *conc)
		perReq := time.Duration(float64(time.Second) * float64(*nSpans) / *rate)
		go func() {
			next := time.Now()
			for ctx.Err() == nil {
				next = next.Add(perReq)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				select {
				case tokens <- struct{}{}:
				default: // target is behind: drop the token, the offered rate is what it is
				}
			}
		}()
	}

	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i += *conc {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				}
				if ctx.Err() != nil {
					return
				}
				in := reqs[i%len(reqs)]
				var out []byte
				cctx, ccancel := context.WithTimeout(context.Background(), *timeout)
				err := cc[i%len(cc)].Invoke(cctx, exportMethod, &in, &out)
				ccancel()
				sent.Add(1)
				code := status.Code(err)
				switch code {
				case codes.OK:
					r := rejectedSpans(out)
					rejected.Add(r)
					accepted.Add(int64(*nSpans) - r)
				case codes.Unavailable, codes.ResourceExhausted:
					refused.Add(int64(*nSpans))
				default:
					failed.Add(int64(*nSpans))
				}
				if code != codes.OK {
					mu.Lock()
					codeCounts[code.String()]++
					mu.Unlock()
					if code == codes.Unavailable || code == codes.ResourceExhausted {
						// Back off briefly like a real client would, so a refusing target
						// is not spun at 100% by refusals alone.
						time.Sleep(5 * time.Millisecond)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	res := result{
		SentRequests: sent.Load(), AcceptedSpans: accepted.Load(), RefusedSpans: refused.Load(),
		RejectedSpans: rejected.Load(), FailedSpans: failed.Load(), Codes: codeCounts,
		ElapsedS: time.Since(start).Seconds(), RequestBytes: len(reqs[0]), SpansPerReq: *nSpans,
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}
