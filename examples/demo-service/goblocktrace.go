package main

import (
	"os"

	"github.com/otel-goblock/goblocktrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// goblockTraceOptions adds goblocktrace's span processor when GOBLOCK_TRACE_SPANS=1: each
// span's start and end then leave a runtime/trace user log on the goroutine that ran it,
// which otel-goblock's gotrace receiver (pulling /debug/pprof/trace) turns into span
// markers. Off by default so the demo's spans and costs stay as they were; while no
// execution trace is recorded the processor costs one atomic load per span.
func goblockTraceOptions() []sdktrace.TracerProviderOption {
	if os.Getenv("GOBLOCK_TRACE_SPANS") != "1" {
		return nil
	}
	return []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(goblocktrace.New())}
}
