package goblocktrace

import (
	"bytes"
	"context"
	"os"
	"runtime/trace"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

func TestMessageFormat(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	_, s := tp.Tracer("t").Start(context.Background(), "op")
	sc := s.SpanContext()
	want := "end " + sc.TraceID().String() + " " + sc.SpanID().String()
	if got := Message("end", sc); got != want {
		t.Fatalf("Message = %q, want %q", got, want)
	}
}

// The logs land in the execution trace (their text is in the trace's string table) only
// while a trace is recorded.
func TestLogsOnlyWhileTracing(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(New()))
	tr := tp.Tracer("t")
	_, before := tr.Start(context.Background(), "before")
	before.End()

	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	_, s := tr.Start(context.Background(), "traced")
	s.End()
	trace.Stop()

	if !bytes.Contains(buf.Bytes(), []byte(Message("start", s.SpanContext()))) {
		t.Error("start log of the traced span missing")
	}
	if !bytes.Contains(buf.Bytes(), []byte(Message("end", s.SpanContext()))) {
		t.Error("end log of the traced span missing")
	}
	if bytes.Contains(buf.Bytes(), []byte(before.SpanContext().SpanID().String())) {
		t.Error("a span ended before tracing started was logged")
	}
}

func BenchmarkOnEndTracingOff(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	_, s := tp.Tracer("t").Start(context.Background(), "op")
	ro := s.(sdktrace.ReadOnlySpan)
	p := New()
	for b.Loop() {
		p.OnEnd(ro)
	}
}

// TestCrossGoroutineTrace writes, when GOBLOCKTRACE_TRACE_OUT names a file, an execution
// trace in which one goroutine starts a span and another sleeps 20 ms and ends it
// (otel-goblock's tests/gotrace/test_span_logs.py reads it with the Python parser).
func TestCrossGoroutineTrace(t *testing.T) {
	path := os.Getenv("GOBLOCKTRACE_TRACE_OUT")
	if path == "" {
		t.Skip("GOBLOCKTRACE_TRACE_OUT not set")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(New()))
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	handoff := make(chan oteltrace.Span)
	done := make(chan struct{})
	go func() {
		s := <-handoff
		time.Sleep(20 * time.Millisecond)
		s.End()
		close(done)
	}()
	_, s := tp.Tracer("t").Start(context.Background(), "handed-off")
	handoff <- s
	<-done
	trace.Stop()
}
