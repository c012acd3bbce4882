package tracing_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func Hello(ctx tp.CallCtx, name *string) (string, *tp.Status) { return "hello " + *name, nil }

func Example() {
	exporter := tracetest.NewInMemoryExporter() // in production: OTLP, say
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer provider.Shutdown(context.Background())

	srv, err := tp.NewPeer(tp.PeerConfig{}, tracing.New(tracing.Config{TracerProvider: provider}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Hello)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{}, tracing.New(tracing.Config{TracerProvider: provider}))
	if err != nil {
		log.Fatal(err)
	}
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())
	sess.Call(context.Background(), "/hello", "world", nil)
	cli.Close()
	srv.Close() // its server span has ended by now

	spans := exporter.GetSpans()
	fmt.Println(len(spans), "spans, one trace:", spans[0].SpanContext.TraceID() == spans[1].SpanContext.TraceID())
	// Output: 2 spans, one trace: true
}
