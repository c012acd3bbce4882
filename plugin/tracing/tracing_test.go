package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/proxy"
	"github.com/seed-a9a850dd/tp/plugin/tracing"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// newTracing returns a plugin recording into an in-memory exporter.
func newTracing(t *testing.T) (*tracing.Plugin, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tracing.New(tracing.Config{TracerProvider: tp}), exp
}

// Outer calls back the caller's /inner before answering.
func Outer(ctx tp.CallCtx, n *int) (int, *tp.Status) {
	var m int
	if st := ctx.Session().Call(ctx.Context(), "/inner", *n, &m).Status(); st != nil {
		return 0, st
	}
	return m, nil
}

func Inner(ctx tp.CallCtx, n *int) (int, *tp.Status) { return *n + 1, nil }

func Fail(ctx tp.CallCtx, _ *struct{}) (int, *tp.Status) {
	return 0, tp.NewStatus(tp.CodeInvalidArgument, "no", nil)
}

func Slow(ctx tp.CallCtx, _ *struct{}) (int, *tp.Status) {
	time.Sleep(50 * time.Millisecond)
	return 0, nil
}

var pushed = make(chan struct{}, 1)

func Note(ctx tp.PushCtx, _ *struct{}) *tp.Status {
	pushed <- struct{}{}
	return nil
}

// span finds the one span with this name and kind.
func span(t *testing.T, spans tracetest.SpanStubs, name string, kind trace.SpanKind) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name && s.SpanKind == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans named %q; have %d spans", len(found), kind, name, len(spans))
	}
	return found[0]
}

// chain checks that each span is the parent of the next, in one trace.
func chain(t *testing.T, spans ...tracetest.SpanStub) {
	t.Helper()
	for i := 1; i < len(spans); i++ {
		parent, child := spans[i-1], spans[i]
		if child.SpanContext.TraceID() != parent.SpanContext.TraceID() {
			t.Fatalf("%s %s is in another trace than %s %s", child.SpanKind, child.Name, parent.SpanKind, parent.Name)
		}
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Fatalf("%s %s is not a child of %s %s", child.SpanKind, child.Name, parent.SpanKind, parent.Name)
		}
	}
}

func TestCallAndCallbackFormOneTrace(t *testing.T) {
	tr, exp := newTracing(t)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, tr)
	srv.RouteCallFunc(Outer)
	srv.RouteCallFunc(Fail)
	srv.RouteCallFunc(Slow)
	srv.RoutePushFunc(Note)
	cli := tptest.NewPeer(t, tp.PeerConfig{}, tr)
	cli.RouteCallFunc(Inner)
	sess := tptest.Dial(t, cli, tptest.Serve(t, srv))

	var n int
	if err := sess.Call(context.Background(), "/outer", 1, &n).Err(); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	tptest.WaitFor(t, "the server span to end", func() bool { return len(exp.GetSpans()) == 4 })
	spans := exp.GetSpans()
	chain(t,
		span(t, spans, "/outer", trace.SpanKindClient),
		span(t, spans, "/outer", trace.SpanKindServer),
		span(t, spans, "/inner", trace.SpanKindClient),
		span(t, spans, "/inner", trace.SpanKindServer))
	exp.Reset()

	sess.Call(context.Background(), "/fail", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	sess.Call(ctx, "/slow", nil, nil)
	cancel()
	tptest.WaitFor(t, "four spans", func() bool { return len(exp.GetSpans()) == 4 })
	spans = exp.GetSpans()
	for _, s := range []tracetest.SpanStub{
		span(t, spans, "/fail", trace.SpanKindClient),
		span(t, spans, "/fail", trace.SpanKindServer),
		span(t, spans, "/slow", trace.SpanKindClient), // ended by its deadline, with no reply
	} {
		if s.Status.Code != codes.Error {
			t.Errorf("%s %s: status %v, want Error", s.SpanKind, s.Name, s.Status)
		}
	}
	exp.Reset()

	sess.Push(context.Background(), "/note", nil)
	<-pushed
	tptest.WaitFor(t, "push spans", func() bool { return len(exp.GetSpans()) == 2 })
	spans = exp.GetSpans()
	chain(t, span(t, spans, "/note", trace.SpanKindProducer), span(t, spans, "/note", trace.SpanKindConsumer))
}

func TestTraceAcrossProxy(t *testing.T) {
	tr, exp := newTracing(t)
	backend := tptest.NewPeer(t, tp.PeerConfig{}, tr)
	backend.RouteCallFunc(Inner)
	var upstream *tp.Session
	gw := tptest.NewPeer(t, tp.PeerConfig{}, tr, proxy.New(func(*proxy.Label) proxy.Forwarder { return upstream }))
	upstream = tptest.Dial(t, gw, tptest.Serve(t, backend))
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, tr), tptest.Serve(t, gw))

	if err := sess.Call(context.Background(), "/inner", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	tptest.WaitFor(t, "four spans", func() bool { return len(exp.GetSpans()) == 4 })
	spans := exp.GetSpans()
	var clients, servers []tracetest.SpanStub
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient {
			clients = append(clients, s)
		} else {
			servers = append(servers, s)
		}
	}
	if len(clients) != 2 || len(servers) != 2 {
		t.Fatalf("%d client and %d server spans", len(clients), len(servers))
	}
	// The caller's client span has no parent; the gateway's has.
	if clients[0].Parent.IsValid() {
		clients[0], clients[1] = clients[1], clients[0]
	}
	if servers[0].Parent.SpanID() != clients[0].SpanContext.SpanID() {
		servers[0], servers[1] = servers[1], servers[0]
	}
	chain(t, clients[0], servers[0], clients[1], servers[1])
}

// Without the plugin at the server, the caller's span has no child: the
// chain checks above depend on the plugin.
func TestNoPluginNoChild(t *testing.T) {
	tr, exp := newTracing(t)
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Inner)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, tr), tptest.Serve(t, srv))
	sess.Call(context.Background(), "/inner", 1, nil)
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].SpanKind != trace.SpanKindClient {
		t.Fatalf("spans: %v", spans)
	}
}

// Sum streams back the sum of what it receives; its context carries the
// SERVER span, so its call back to the opener is a child.
func Sum(ctx tp.StreamCtx, s *tp.Stream) error {
	total := 0
	for {
		var n int
		if err := s.Recv(&n); err != nil {
			var m int
			if st := ctx.Session().Call(s.Context(), "/inner", total, &m).Status(); st != nil {
				return st
			}
			return s.Send(m)
		}
		total += n
	}
}

// A stream is one CLIENT span at the opener and one SERVER span, its
// child, at the other end, covering the stream's life; a call the
// handler makes is the SERVER span's child.
func TestTracingStreams(t *testing.T) {
	srvTr, srvExp := newTracing(t)
	cliTr, cliExp := newTracing(t)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, srvTr)
	srv.RouteStreamFunc(Sum)
	cli := tptest.NewPeer(t, tp.PeerConfig{}, cliTr)
	cli.RouteCallFunc(Inner)
	sess := tptest.Dial(t, cli, tptest.Serve(t, srv))
	s, err := sess.OpenStream(context.Background(), "/sum")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		s.Send(i)
	}
	s.CloseSend()
	var got int
	if err := s.Recv(&got); err != nil || got != 7 {
		t.Fatalf("%d %v", got, err)
	}
	tptest.WaitFor(t, "the stream spans", func() bool { return len(srvExp.GetSpans()) == 2 && len(cliExp.GetSpans()) == 2 })
	client := span(t, cliExp.GetSpans(), "/sum", trace.SpanKindClient)
	server := span(t, srvExp.GetSpans(), "/sum", trace.SpanKindServer)
	call := span(t, srvExp.GetSpans(), "/inner", trace.SpanKindClient)
	chain(t, client, server, call)

	// A stream refused for want of a route: the opener's span says so.
	s, _ = sess.OpenStream(context.Background(), "/nowhere")
	s.Recv(new(int))
	tptest.WaitFor(t, "the refused stream's span", func() bool { return len(cliExp.GetSpans()) == 3 })
	if sp := span(t, cliExp.GetSpans(), "/nowhere", trace.SpanKindClient); sp.Status.Code != codes.Error {
		t.Fatalf("the refused stream's span: %v", sp.Status)
	}
}
