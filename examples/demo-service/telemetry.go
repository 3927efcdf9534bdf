package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// defaultBatchDelay replaces the SDK's 5 s default batch delay when OTEL_BSP_SCHEDULE_DELAY
// is unset: tests read spans back from the backend right after a request, so a short delay
// keeps them fast without changing what the spans contain.
const defaultBatchDelay = 200 * time.Millisecond

// telemetry holds the SDK providers so main can flush them on SIGTERM.
type telemetry struct {
	tp *sdktrace.TracerProvider
	mp *sdkmetric.MeterProvider
}

// insecureEndpoint reports whether the OTLP endpoint should be dialled without TLS. The demo
// talks to loopback collectors only; TLS is used only when the endpoint says https.
func insecureEndpoint() bool {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := os.Getenv(k); v != "" {
			return !strings.HasPrefix(strings.ToLower(v), "https://")
		}
	}
	return true
}

// newResource builds service.name (default "demo-service", OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES override it: later detectors win) and process.pid, which
// otel-goblock uses to find the process a span came from.
func newResource(ctx context.Context) (*resource.Resource, error) {
	return resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "demo-service")),
		resource.WithFromEnv(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithTelemetrySDK(),
	)
}

// setupTelemetry installs the global tracer provider (OTLP gRPC, batch) and, unless
// OTEL_METRICS_EXPORTER=none, a meter provider fed by the contrib runtime instrumentation.
func setupTelemetry(ctx context.Context) (*telemetry, error) {
	res, err := newResource(ctx)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	var topts []otlptracegrpc.Option
	if insecureEndpoint() {
		topts = append(topts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, topts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if os.Getenv("OTEL_BSP_SCHEDULE_DELAY") == "" {
		bopts = append(bopts, sdktrace.WithBatchTimeout(defaultBatchDelay))
	}
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, bopts...),
	}, goblockTraceOptions()...)...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))
	t := &telemetry{tp: tp}

	if strings.ToLower(os.Getenv("OTEL_METRICS_EXPORTER")) == "none" {
		return t, nil
	}
	var mopts []otlpmetricgrpc.Option
	if insecureEndpoint() {
		mopts = append(mopts, otlpmetricgrpc.WithInsecure())
	}
	mexp, err := otlpmetricgrpc.New(ctx, mopts...)
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)),
	)
	otel.SetMeterProvider(t.mp)
	if err := runtime.Start(runtime.WithMeterProvider(t.mp)); err != nil {
		return nil, fmt.Errorf("runtime metrics: %w", err)
	}
	return t, nil
}

// shutdown flushes every span and metric still buffered; called on SIGTERM so that the
// last requests before a stop still reach the backend.
func (t *telemetry) shutdown(ctx context.Context) error {
	err := t.tp.Shutdown(ctx)
	if t.mp != nil {
		if merr := t.mp.Shutdown(ctx); err == nil {
			err = merr
		}
	}
	return err
}
