// Package tracing records OpenTelemetry spans for tp's calls, pushes and
// replies, and carries the trace context in message meta, so a call across
// peers (and across the proxy plugin) forms one trace.
//
//	peer, err := tp.NewPeer(cfg, tracing.New(tracing.Config{TracerProvider: provider}))
//
// Spans, named after the service method:
//
//   - a CLIENT span per CALL made, from Call to its outcome (reply,
//     timeout or broken connection); an error outcome sets the span's
//     status to Error with the status code as an attribute;
//   - a SERVER span per CALL served, from reading it to writing the reply,
//     with the caller's span as parent; the handler's Context carries it,
//     so the calls a handler makes are its children;
//   - a PRODUCER span per PUSH sent and a CONSUMER span per PUSH received,
//     whose context the push handler's Context carries;
//   - a CLIENT span per stream opened and a SERVER span per stream served,
//     from opening to end, in the streams' contexts.
//
// The trace context travels in meta under the propagator's keys
// ("traceparent" and "tracestate" for W3C Trace Context, the default).
package tracing

import (
	"context"
	"errors"
	"sync"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Config configures the plugin.
type Config struct {
	// TracerProvider makes the tracer; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Propagator carries the trace context in meta; nil means W3C Trace
	// Context.
	Propagator propagation.TextMapPropagator
}

// Plugin is the plugin.
type Plugin struct {
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	streams sync.Map // *tp.Stream: its trace.Span
}

var (
	_ tp.PreWriteCallPlugin        = (*Plugin)(nil)
	_ tp.CallDonePlugin            = (*Plugin)(nil)
	_ tp.PostReadReplyHeaderPlugin = (*Plugin)(nil)
	_ tp.PostReadCallHeaderPlugin  = (*Plugin)(nil)
	_ tp.PostWriteReplyPlugin      = (*Plugin)(nil)
	_ tp.PreWritePushPlugin        = (*Plugin)(nil)
	_ tp.PostReadPushHeaderPlugin  = (*Plugin)(nil)
	_ tp.PostReadPushBodyPlugin    = (*Plugin)(nil)
	_ tp.StreamOpenPlugin          = (*Plugin)(nil)
	_ tp.StreamDonePlugin          = (*Plugin)(nil)
)

// ScopeName is the instrumentation scope of the tracer.
const ScopeName = "github.com/seed-a9a850dd/tp/plugin/tracing"

// New returns the plugin.
func New(cfg Config) *Plugin {
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.Propagator == nil {
		cfg.Propagator = propagation.TraceContext{}
	}
	return &Plugin{tracer: cfg.TracerProvider.Tracer(ScopeName), prop: cfg.Propagator}
}

// Name implements tp.Plugin.
func (t *Plugin) Name() string { return "tracing" }

// carrier lets the propagator read and write message meta.
type carrier struct{ m *socket.Meta }

func (c carrier) Get(key string) string { return c.m.Get(key) }
func (c carrier) Set(key, value string) { c.m.Set(key, value) }
func (c carrier) Keys() []string {
	var keys []string
	c.m.Range(func(k, _ string) bool {
		keys = append(keys, k)
		return true
	})
	return keys
}

// attrs describes a span: the session's attributes as one option made
// once per session and kept with it (the peer address is the one it
// connected with), plus the service method.
func attrs(sess *tp.Session, serviceMethod string) (trace.SpanStartOption, trace.SpanStartOption) {
	v, ok := attrsKey.Get(sess)
	if !ok {
		v, _ = attrsKey.GetOrSet(sess, trace.WithAttributes(
			attribute.String("rpc.system", "tp"),
			attribute.String("tp.session", sess.ID()),
			attribute.String("network.peer.address", sess.RemoteAddr().String()),
		))
	}
	return v, trace.WithAttributes(attribute.String("rpc.method", serviceMethod))
}

var attrsKey = tp.NewKey[trace.SpanStartOption]("tracing attributes")

// start starts a span of kind named after the message's service method.
func (t *Plugin) start(ctx context.Context, sess *tp.Session, m *socket.Message, kind trace.SpanKind) (context.Context, trace.Span) {
	session, method := attrs(sess, m.ServiceMethod)
	return t.tracer.Start(ctx, m.ServiceMethod, trace.WithSpanKind(kind), session, method)
}

// PreWriteCall starts the CLIENT span and puts its context in the meta.
func (t *Plugin) PreWriteCall(c tp.WriteCtx) error {
	m := c.Output()
	ctx, _ := t.start(c.Context(), c.Session(), m, trace.SpanKindClient)
	t.prop.Inject(ctx, carrier{&m.Meta})
	if cmd, ok := c.(*tp.CallCmd); ok {
		cmd.SetContext(ctx) // for CallDone
	}
	return nil
}

// PostReadReplyHeader notes the reply on the CLIENT span.
func (t *Plugin) PostReadReplyHeader(c tp.ReadCtx) error {
	trace.SpanFromContext(c.Context()).AddEvent("reply", trace.WithAttributes(attribute.Int("tp.size", c.Input().Size)))
	return nil
}

// CallDone ends the CLIENT span with the call's outcome.
func (t *Plugin) CallDone(c *tp.CallCmd) {
	span := trace.SpanFromContext(c.Context())
	end(span, c.Status())
}

func end(span trace.Span, st *tp.Status) {
	if !st.OK() {
		span.SetAttributes(attribute.String("tp.code", tp.CodeOf(st).String()))
		span.SetStatus(codes.Error, st.Error())
	}
	span.End()
}

// PostReadCallHeader starts the SERVER span, child of the caller's, and
// gives it to the handler's context.
func (t *Plugin) PostReadCallHeader(c tp.ReadCtx) error {
	t.startIncoming(c, trace.SpanKindServer)
	return nil
}

func (t *Plugin) startIncoming(c tp.ReadCtx, kind trace.SpanKind) {
	m := c.Input()
	ctx := t.prop.Extract(c.Context(), carrier{&m.Meta})
	ctx, _ = t.start(ctx, c.Session(), m, kind)
	c.SetContext(ctx)
}

// PostWriteReply ends the SERVER span once the reply is written.
func (t *Plugin) PostWriteReply(c tp.WriteCtx) error {
	end(trace.SpanFromContext(c.Context()), c.Output().Status)
	return nil
}

// PreWritePush records the PRODUCER span and puts its context in the meta.
func (t *Plugin) PreWritePush(c tp.WriteCtx) error {
	m := c.Output()
	ctx, span := t.start(c.Context(), c.Session(), m, trace.SpanKindProducer)
	t.prop.Inject(ctx, carrier{&m.Meta})
	span.End()
	return nil
}

// PostReadPushHeader starts the CONSUMER span and gives it to the
// handler's context.
func (t *Plugin) PostReadPushHeader(c tp.ReadCtx) error {
	t.startIncoming(c, trace.SpanKindConsumer)
	return nil
}

// PostReadPushBody ends the CONSUMER span: a push has no reply to wait
// for, and the handler's context keeps the span's context for its own
// calls.
func (t *Plugin) PostReadPushBody(c tp.ReadCtx) error {
	trace.SpanFromContext(c.Context()).End()
	return nil
}

// StreamOpen starts a stream's span: CLIENT at the opener, with its
// context in the opening's meta; SERVER at the other end, child of the
// opener's. The stream's Context carries it.
func (t *Plugin) StreamOpen(s *tp.Stream) error {
	ctx, kind := s.Context(), trace.SpanKindClient
	if !s.Opened() {
		ctx, kind = t.prop.Extract(ctx, carrier{s.Header()}), trace.SpanKindServer
	}
	session, method := attrs(s.Session(), s.ServiceMethod())
	ctx, span := t.tracer.Start(ctx, s.ServiceMethod(), trace.WithSpanKind(kind), session, method)
	t.streams.Store(s, span)
	if s.Opened() {
		t.prop.Inject(ctx, carrier{s.Header()})
	}
	s.SetContext(ctx)
	return nil
}

// StreamDone ends a stream's span with its outcome.
func (t *Plugin) StreamDone(s *tp.Stream) {
	if span, ok := t.streams.LoadAndDelete(s); ok {
		var st *tp.Status
		errors.As(s.Err(), &st)
		end(span.(trace.Span), st)
	}
}
