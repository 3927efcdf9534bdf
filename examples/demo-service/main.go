// Command demo-service is otel-goblock's ground truth: an OpenTelemetry-instrumented Go
// service whose HTTP endpoints each block on one known cause (docs/scenarios.md), so that
// every diagnosis can be checked against a cause injected on purpose.
//
//	demo-service [-listen 127.0.0.1:8080] [-grpc-listen 127.0.0.1:0] [-backend-listen 127.0.0.1:0] [-data-dir DIR]
//	demo-service load -url http://127.0.0.1:8080 -scenario '/sleep?ms=50@3,/chan?ms=20' -rate 100 -concurrency 8 -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// requireLoopback refuses listen addresses beyond loopback: the demo blocks on purpose and
// exposes pprof, so it must never be reachable from another host.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: only loopback addresses are allowed", addr)
	}
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "spin" {
		runSpin()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "load" {
		if err := runLoad(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP address (loopback only): scenarios, /healthz, /debug/pprof/")
	grpcListen := flag.String("grpc-listen", "127.0.0.1:0", "in-process gRPC server address (loopback only)")
	backendListen := flag.String("backend-listen", "127.0.0.1:0", "TCP backend address (loopback only)")
	dataDir := flag.String("data-dir", os.TempDir(), "directory for /fsync files (use a real disk, not tmpfs)")
	flag.Parse()
	for _, a := range []string{*listen, *grpcListen, *backendListen} {
		if err := requireLoopback(a); err != nil {
			log.Fatal(err)
		}
	}
	// Lower grpc-go's keepalive floor before any WithKeepaliveParams call (see grpcdemo.go).
	keepaliveMinPingTime = 10 * time.Millisecond

	ctx := context.Background()
	tel, err := setupTelemetry(ctx)
	if err != nil {
		log.Fatal(err)
	}
	backend, err := startTCPBackend(*backendListen)
	if err != nil {
		log.Fatal(err)
	}
	gd, err := startGRPC(*grpcListen)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	a := &app{
		bg: newDetached(), spin: newSpinPool(2 * runtime.NumCPU()), backend: backend, grpc: gd, dataDir: *dataDir,
		selfURL: "http://" + ln.Addr().String(), downHTTP: newDownstreamClient(),
	}
	scenarios := http.NewServeMux()
	a.routes(scenarios)
	root := http.NewServeMux()
	// pprof and the health check stay untraced: they are tooling, not scenarios.
	root.HandleFunc("/debug/pprof/", pprof.Index)
	root.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	root.HandleFunc("/debug/pprof/profile", pprof.Profile)
	root.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	root.HandleFunc("/debug/pprof/trace", pprof.Trace)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, result{
			"status": "ok", "pid": os.Getpid(), "http": ln.Addr().String(),
			"grpc": gd.addr(), "backend": backend.addr(),
		})
	})
	// Dispatch by hand rather than mounting the traced handler at "/" of root: a mux would
	// set r.Pattern to "/" before otelhttp sees the request, and http.route would read "/".
	traced := otelhttp.NewHandler(scenarios, "demo-service")
	top := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			root.ServeHTTP(w, r)
			return
		}
		traced.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: top, ReadHeaderTimeout: 10 * time.Second}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Printf("demo-service pid %d: http %s grpc %s backend %s", os.Getpid(), ln.Addr(), gd.addr(), backend.addr())

	select {
	case s := <-sigs:
		log.Printf("%v: shutting down", s)
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Printf("http server: %v", err)
		}
	}
	sctx, cancel := shutdownCtx()
	defer cancel()
	_ = srv.Shutdown(sctx)
	gd.stop()
	a.spin.stop()
	if err := tel.shutdown(sctx); err != nil {
		log.Printf("telemetry flush: %v", err)
	}
	log.Printf("stopped")
}
