package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/metrics"
	"github.com/seed-a9a850dd/tp/plugin/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// pluginSet returns a maker of the plugins named in list, for -plugins.
func pluginSet(list string) (func() ([]tp.Plugin, error), error) {
	names := strings.FieldsFunc(list, func(r rune) bool { return r == ',' })
	for _, name := range names {
		switch name {
		case "noop", "metrics", "tracing":
		default:
			return nil, fmt.Errorf("unknown plugin %q in -plugins: want noop, metrics or tracing", name)
		}
	}
	return func() ([]tp.Plugin, error) {
		var ps []tp.Plugin
		for _, name := range names {
			switch name {
			case "noop":
				ps = append(ps, noop{})
			case "metrics":
				m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry()})
				if err != nil {
					return nil, err
				}
				ps = append(ps, m)
			case "tracing":
				// Every span sampled and recorded; no exporter, so the cost
				// is tp's and OpenTelemetry's, not an exporter's.
				provider := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
				ps = append(ps, tracing.New(tracing.Config{TracerProvider: provider}))
			}
		}
		return ps, nil
	}, nil
}

// noop implements every hook and does nothing: the cost of the plugin
// container itself.
type noop struct{}

func (noop) Name() string                         { return "noop" }
func (noop) PostDial(*tp.Session, bool) error     { return nil }
func (noop) PostAccept(*tp.Session) error         { return nil }
func (noop) PostDisconnect(*tp.Session)           {}
func (noop) CallDone(*tp.CallCmd)                 {}
func (noop) PostListen(net.Addr) error            { return nil }
func (noop) PreWriteCall(tp.WriteCtx) error       { return nil }
func (noop) PostWriteCall(tp.WriteCtx) error      { return nil }
func (noop) PreWriteReply(tp.WriteCtx) error      { return nil }
func (noop) PostWriteReply(tp.WriteCtx) error     { return nil }
func (noop) PreWritePush(tp.WriteCtx) error       { return nil }
func (noop) PostWritePush(tp.WriteCtx) error      { return nil }
func (noop) PreReadHeader(*tp.Session) error      { return nil }
func (noop) PostReadCallHeader(tp.ReadCtx) error  { return nil }
func (noop) PreReadCallBody(tp.ReadCtx) error     { return nil }
func (noop) PostReadCallBody(tp.ReadCtx) error    { return nil }
func (noop) PostReadPushHeader(tp.ReadCtx) error  { return nil }
func (noop) PreReadPushBody(tp.ReadCtx) error     { return nil }
func (noop) PostReadPushBody(tp.ReadCtx) error    { return nil }
func (noop) PostReadReplyHeader(tp.ReadCtx) error { return nil }
func (noop) PreReadReplyBody(tp.ReadCtx) error    { return nil }
func (noop) PostReadReplyBody(tp.ReadCtx) error   { return nil }
