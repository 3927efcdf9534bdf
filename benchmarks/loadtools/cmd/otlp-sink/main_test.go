package main

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// The sink's wire-level count must equal the span count of a real request with several
// resources and scopes, or every throughput number of the benchmark is wrong.
func TestCountSpansMatchesPdata(t *testing.T) {
	td := ptrace.NewTraces()
	want := 0
	for r := 0; r < 3; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		for s := 0; s < r+1; s++ {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("scope")
			for i := 0; i < 7*(s+1); i++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetName("op")
				sp.Attributes().PutInt("i", int64(i))
				want++
			}
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	got, err := countSpans(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(want) || want != td.SpanCount() {
		t.Fatalf("countSpans = %d, want %d", got, want)
	}
	// Concatenated requests are one valid request (how batching pipelines join bytes).
	got, err = countSpans(append(append([]byte{}, b...), b...))
	if err != nil || got != int64(2*want) {
		t.Fatalf("concatenated: countSpans = %d, %v; want %d", got, err, 2*want)
	}
}

func TestCountSpansRejectsTruncated(t *testing.T) {
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if _, err := countSpans(b[:len(b)-1]); err == nil {
		t.Fatal("truncated request: want an error")
	}
}
