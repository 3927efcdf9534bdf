package main

import (
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// The generated request has the shape the benchmark promises: N spans with M attributes.
func TestBuildRequestShape(t *testing.T) {
	b := buildRequest(rand.New(rand.NewPCG(1, 2)), 512, 10)
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b); err != nil {
		t.Fatal(err)
	}
	td := req.Traces()
	if td.SpanCount() != 512 {
		t.Fatalf("spans = %d, want 512", td.SpanCount())
	}
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if sp.Attributes().Len() != 10 {
		t.Fatalf("attributes = %d, want 10", sp.Attributes().Len())
	}
}

// partial_success.rejected_spans is read from a real response; an empty response is 0.
func TestRejectedSpans(t *testing.T) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(42)
	resp.PartialSuccess().SetErrorMessage("some rejected")
	b, err := resp.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if got := rejectedSpans(b); got != 42 {
		t.Fatalf("rejectedSpans = %d, want 42", got)
	}
	if got := rejectedSpans(nil); got != 0 {
		t.Fatalf("empty response: rejectedSpans = %d, want 0", got)
	}
}
