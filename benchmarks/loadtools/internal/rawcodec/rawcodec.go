// Package rawcodec is a gRPC codec that moves already-serialized protobuf bytes.
//
// Why: the load generator must not spend its CPU re-marshalling the same request for every
// send, and the sink must not spend its CPU building message objects just to count spans.
// Both sides exchange *[]byte; the wire format is still ordinary protobuf, so any OTLP peer
// (otel-goblock, the Collector) sees a normal request. Name() is "proto" so the content-type
// stays application/grpc+proto.
package rawcodec

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// Codec implements encoding.CodecV2 over *[]byte values.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name keeps the standard content subtype so peers treat the payload as protobuf.
func (Codec) Name() string { return "proto" }

// Marshal hands the pre-serialized bytes to gRPC without copying.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawcodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

// Unmarshal copies the received frame out of gRPC's pooled buffers.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawcodec: cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}
