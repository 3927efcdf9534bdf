// Command otlp-sink is the benchmark's downstream: an OTLP/gRPC TraceService that accepts
// every request and counts its spans.
//
// Why a dedicated Go sink: it sits on the load-generator core, so it must cost far less per
// span than any pipeline under test, or the sink — not the pipeline — sets the ceiling.
// Spans are counted by walking the protobuf wire format (ExportTraceServiceRequest →
// resource_spans(1) → scope_spans(2) → spans(2)) without building messages.
//
// Output: one JSON line per --interval on stdout with cumulative counters and a monotonic
// timestamp, so the orchestrator can compute the sustained rate over any window:
//
//	{"t":12.345,"spans":1048576,"requests":128,"bytes":...}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the exporters under test compress with gzip by default
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otel-goblock/otel-goblock/benchmarks/loadtools/internal/rawcodec"
)

var spans, requests, bytesIn, malformed atomic.Int64

// throttle makes the sink a slow downstream (--max-spans-per-s): each request is answered
// only when a shared schedule, advanced by its span count / rate, reaches it. This is how
// the overload benchmark makes the pipeline's exporter queue grow, so the memory_limiter has
// something to limit.
type throttle struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

func (t *throttle) wait(n int64) {
	if t == nil || t.rate <= 0 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	if t.next.Before(now) {
		t.next = now
	}
	t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	at := t.next
	t.mu.Unlock()
	time.Sleep(time.Until(at))
}

var limiter *throttle

// emptyResponse is a serialized ExportTraceServiceResponse with no partial_success: all accepted.
var emptyResponse = []byte{}

// countSpans counts Span messages in a serialized ExportTraceServiceRequest.
func countSpans(b []byte) (int64, error) {
	var n int64
	err := forEachField(b, 1, func(rs []byte) error {
		return forEachField(rs, 2, func(ss []byte) error {
			return forEachField(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// forEachField calls fn with the payload of every length-delimited field numbered num.
func forEachField(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}

func exportHandler(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	n, err := countSpans(in)
	if err != nil {
		malformed.Add(1)
	}
	limiter.wait(n)
	spans.Add(n)
	requests.Add(1)
	bytesIn.Add(int64(len(in)))
	out := emptyResponse
	return &out, nil
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: exportHandler}},
	Metadata:    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

type stats struct {
	T         float64 `json:"t"`
	Spans     int64   `json:"spans"`
	Requests  int64   `json:"requests"`
	Bytes     int64   `json:"bytes"`
	Malformed int64   `json:"malformed"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: pick a free port)")
	interval := flag.Duration("interval", 250*time.Millisecond, "stats line period")
	maxRate := flag.Float64("max-spans-per-s", 0, "answer no faster than this (0: no limit)")
	flag.Parse()
	if *maxRate > 0 {
		limiter = &throttle{rate: *maxRate}
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.ForceServerCodecV2(rawcodec.Codec{}),
		grpc.MaxRecvMsgSize(512<<20),
	)
	srv.RegisterService(&traceServiceDesc, nil)
	// First line tells the orchestrator where we listen (the port may have been picked here).
	fmt.Printf("{\"listen\":%q}\n", lis.Addr().String())
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Fatal(err)
		}
	}()

	start := time.Now()
	enc := json.NewEncoder(os.Stdout)
	emit := func() {
		_ = enc.Encode(stats{time.Since(start).Seconds(), spans.Load(), requests.Load(), bytesIn.Load(), malformed.Load()})
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			emit()
		case <-sig:
			srv.Stop()
			emit()
			return
		}
	}
}
