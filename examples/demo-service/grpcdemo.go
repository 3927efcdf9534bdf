package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	_ "unsafe" // go:linkname, see keepaliveMinPingTime

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC service is declared by hand (no protoc): messages are wrapperspb.BytesValue,
// which is all the scenarios need. Full method names, as they appear in span names:
const (
	grpcService      = "goblock.demo.Demo"
	methodUnary      = "/" + grpcService + "/Unary"
	methodHang       = "/" + grpcService + "/Hang"
	methodUpload     = "/" + grpcService + "/Upload"
	flowMessageBytes = 16 * 1024
	// window is HTTP/2's default 64 KiB (65535) window. Setting it explicitly pins it:
	// grpc-go turns off BDP estimation (which would grow windows to MiBs on loopback) when
	// a window size is configured, so /grpc/flow stalls on exactly the default window.
	window = 65535
)

// keepaliveMinPingTime is grpc-go's floor for the client keepalive Time (10 s; see
// dialoptions.go WithKeepaliveParams). grpc-go's own tests lower it the same way. Without
// lowering it, reaching the server's "more than 2 strikes" GOAWAY takes over 30 s; with it,
// /grpc/keepalive ends in ENHANCE_YOUR_CALM "too_many_pings" within about 4 pings of `ms`.
//
//go:linkname keepaliveMinPingTime google.golang.org/grpc/internal.KeepaliveMinPingTime
var keepaliveMinPingTime time.Duration

// demoHandlers is the (empty) interface grpc.ServiceDesc.HandlerType wants; any value fits.
type demoHandlers interface{}

type demoServer struct{}

var demoDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*demoHandlers)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Unary", Handler: unaryHandler},
		{MethodName: "Hang", Handler: hangHandler},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Upload", Handler: uploadHandler, ClientStreams: true},
	},
}

// unaryHandler echoes the payload at once: the control scenario, nothing blocks.
func unaryHandler(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	h := func(ctx context.Context, req any) (any, error) { return req, nil }
	if icpt == nil {
		return h(ctx, in)
	}
	return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: methodUnary}, h)
}

// hangHandler never answers: it returns when the connection goes away (the keepalive
// scenario's GOAWAY) or after a minute. It sends no headers, so the server's ping-strike
// counter is never reset by outgoing frames.
func hangHandler(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	h := func(ctx context.Context, req any) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Minute):
			return req, nil
		}
	}
	if icpt == nil {
		return h(ctx, in)
	}
	return icpt(ctx, in, &grpc.UnaryServerInfo{FullMethod: methodHang}, h)
}

// uploadHandler is the slow reader of /grpc/flow: it sleeps, before every read after the
// first, the delay the client put in the first message's first 4 bytes (big-endian ms),
// so the sender outruns the 64 KiB window and waits for WINDOW_UPDATEs.
func uploadHandler(_ any, stream grpc.ServerStream) error {
	var total, n int
	var delay time.Duration
	for {
		in := new(wrapperspb.BytesValue)
		if n > 0 {
			time.Sleep(delay)
		}
		err := stream.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n == 0 && len(in.Value) >= 4 {
			delay = time.Duration(int(in.Value[0])<<24|int(in.Value[1])<<16|int(in.Value[2])<<8|int(in.Value[3])) * time.Millisecond
		}
		total += len(in.Value)
		n++
	}
	return stream.SendMsg(wrapperspb.Bytes([]byte(fmt.Sprintf("%d messages, %d bytes", n, total))))
}

// grpcDemo owns the in-process server and the shared client connection of /grpc/unary.
type grpcDemo struct {
	srv   *grpc.Server
	ln    net.Listener
	unary *grpc.ClientConn
}

func startGRPC(addr string) (*grpcDemo, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.InitialWindowSize(window),
		grpc.InitialConnWindowSize(window),
		// The server enforces a 5 min minimum between client pings (grpc-go's default, made
		// explicit): a client pinging faster collects strikes and gets GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Minute}),
	)
	srv.RegisterService(&demoDesc, demoServer{})
	go func() { _ = srv.Serve(ln) }()
	g := &grpcDemo{srv: srv, ln: ln}
	g.unary, err = g.dial()
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (g *grpcDemo) addr() string { return g.ln.Addr().String() }

// dial makes an otelgrpc-instrumented client with the pinned 64 KiB windows.
func (g *grpcDemo) dial(extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithInitialWindowSize(window),
		grpc.WithInitialConnWindowSize(window),
	}, extra...)
	return grpc.NewClient("passthrough:///"+g.addr(), opts...)
}

func (g *grpcDemo) stop() {
	_ = g.unary.Close()
	g.srv.Stop()
}

// callUnary is /grpc/unary: one fast RPC over the shared connection.
func (g *grpcDemo) callUnary(ctx context.Context) (string, error) {
	out := new(wrapperspb.BytesValue)
	err := g.unary.Invoke(ctx, methodUnary, wrapperspb.Bytes([]byte("ping")), out)
	return string(out.Value), err
}

// flowResult is what /grpc/flow reports: sendMs grows with the reader's delay when the
// sender really waits on flow control.
type flowResult struct {
	Messages int     `json:"messages"`
	Bytes    int     `json:"bytes"`
	SendMs   float64 `json:"send_ms"`
	TotalMs  float64 `json:"total_ms"`
	Reply    string  `json:"reply"`
}

// callFlow is /grpc/flow: a client stream of totalBytes in 16 KiB messages over a fresh
// connection (so concurrent requests do not share a connection window) to a server
// that reads one message per delayMs.
func (g *grpcDemo) callFlow(ctx context.Context, delayMs, totalBytes int) (flowResult, error) {
	var res flowResult
	conn, err := g.dial()
	if err != nil {
		return res, err
	}
	defer conn.Close()
	start := time.Now()
	stream, err := conn.NewStream(ctx, &demoDesc.Streams[0], methodUpload)
	if err != nil {
		return res, err
	}
	for sent := 0; sent < totalBytes; sent += flowMessageBytes {
		buf := make([]byte, min(flowMessageBytes, totalBytes-sent))
		if res.Messages == 0 && len(buf) >= 4 {
			buf[0], buf[1], buf[2], buf[3] = byte(delayMs>>24), byte(delayMs>>16), byte(delayMs>>8), byte(delayMs)
		}
		if err := stream.SendMsg(wrapperspb.Bytes(buf)); err != nil {
			return res, err
		}
		res.Messages++
		res.Bytes += len(buf)
	}
	if err := stream.CloseSend(); err != nil {
		return res, err
	}
	res.SendMs = msSince(start)
	out := new(wrapperspb.BytesValue)
	if err := stream.RecvMsg(out); err != nil {
		return res, err
	}
	res.TotalMs = msSince(start)
	res.Reply = string(out.Value)
	return res, nil
}

// callKeepalive is /grpc/keepalive: a fresh connection whose client pings every pingMs with
// PermitWithoutStream, against the server's 5 min MinTime; the hanging RPC ends when the
// server answers the third strike with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and closes.
func (g *grpcDemo) callKeepalive(ctx context.Context, pingMs int) error {
	conn, err := g.dial(grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time:                time.Duration(pingMs) * time.Millisecond,
		Timeout:             5 * time.Second,
		PermitWithoutStream: true,
	}))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out := new(wrapperspb.BytesValue)
	return conn.Invoke(ctx, methodHang, wrapperspb.Bytes([]byte("hang")), out)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
