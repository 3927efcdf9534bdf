// Package goblocktrace tells otel-goblock which goroutine ran each span, without uprobes
// and without root: an OpenTelemetry SDK SpanProcessor that writes one runtime/trace user
// log when a span starts and one when it ends.
//
// The Go execution tracer stamps every user log with the goroutine that wrote it, and the
// SDK calls OnStart/OnEnd synchronously on the goroutine that calls tracer.Start and
// span.End. So a trace pulled from the app (net/http/pprof's /debug/pprof/trace, or a
// runtime/trace.FlightRecorder dump) holds, per span, "goroutine G started/ended span S".
// otel-goblock's gotrace receiver turns the "end" logs into span markers (the same join
// key the eBPF uprobe on recordingSpan.End produces) and the "start" logs into span_start
// events.
//
// Log format (category "goblock.span"; the receiver parses exactly this):
//
//	start <32 hex trace id> <16 hex span id>
//	end <32 hex trace id> <16 hex span id>
//
// Cost: while no execution trace is being recorded, trace.IsEnabled() is one atomic load
// and nothing else runs. While one is recorded, each span adds two trace events of ~60
// bytes (measured by benchmarks/gotrace_accuracy.py in the otel-goblock repository).
//
// Usage:
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithBatcher(exp),
//		sdktrace.WithSpanProcessor(goblocktrace.New()),
//	)
package goblocktrace

import (
	"context"
	"encoding/hex"
	"runtime/trace"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// Category is the runtime/trace log category of the span logs.
const Category = "goblock.span"

// SpanProcessor writes the span logs. It never blocks, holds no state, and exports
// nothing: register it beside the exporting processor (sdktrace.WithSpanProcessor).
type SpanProcessor struct{}

var _ sdktrace.SpanProcessor = SpanProcessor{}

// New returns the processor.
func New() SpanProcessor { return SpanProcessor{} }

// OnStart runs on the goroutine that started the span (tracer.Start calls it inline).
func (SpanProcessor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if trace.IsEnabled() {
		logSpan("start ", s.SpanContext())
	}
}

// OnEnd runs on the goroutine that ended the span (span.End calls it inline).
func (SpanProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if trace.IsEnabled() {
		logSpan("end ", s.SpanContext())
	}
}

// Shutdown has nothing to release.
func (SpanProcessor) Shutdown(context.Context) error { return nil }

// ForceFlush has nothing buffered.
func (SpanProcessor) ForceFlush(context.Context) error { return nil }

// Message formats the log message of one span event (exported for tests and for apps
// that write the log themselves, e.g. from a span they do not end through the SDK).
func Message(phase string, sc oteltrace.SpanContext) string {
	return message(phase+" ", sc)
}

func message(prefix string, sc oteltrace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	var buf [6 + 32 + 1 + 16]byte
	n := copy(buf[:], prefix)
	n += hex.Encode(buf[n:], tid[:])
	buf[n] = ' '
	n++
	n += hex.Encode(buf[n:], sid[:])
	return string(buf[:n])
}

// logSpan writes the log with a background context: the span logs belong to no
// runtime/trace task (the app's own tasks stay as they are).
func logSpan(prefix string, sc oteltrace.SpanContext) {
	trace.Log(context.Background(), Category, message(prefix, sc))
}
