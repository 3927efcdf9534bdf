package goblocktrace

import (
	"bytes"
	"context"
	"runtime/trace"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
