// Package metrics exports a peer's traffic as Prometheus metrics, through
// github.com/prometheus/client_golang, into a registry the application
// owns and serves:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(metrics.Config{Registerer: reg})
//	srv, err := tp.NewPeer(cfg, m)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, under Config.Namespace ("tp" by default):
//
//	calls_served_total{service_method,code}    CALLs answered, by outcome
//	call_served_seconds{service_method}        from reading a CALL to writing its reply
//	calls_made_total{service_method,code}      CALLs made, by outcome (local ones too: timeout, conn closed)
//	call_made_seconds{service_method}          from Call to its outcome
//	pushes_received_total{service_method}      PUSHes that reached a handler
//	pushes_sent_total{service_method}          PUSHes sent
//	pushes_dropped_total                        PUSHes no handler took (their senders cannot know)
//	streams_total{service_method,side,code}     streams ended, by the side this end had (opened, accepted) and outcome
//	stream_seconds{service_method,side}         streams' lives, from opening to end
//	streams_open{side}                          streams open now
//	sessions                                    sessions held
//	handlers_running, handler_pool_size         the handler pool's occupancy and size
//
// Messages served are labelled by the route that served them: those
// answered CodeNotFound under "(not found)", those the unknown handler
// took (a proxy's) under "(unknown)", so a peer sending random names
// cannot grow the label set. Two peers in one registry need ConstLabels that tell them
// apart. The plugin turns on PeerConfig.CountTime, which the latencies
// need.
package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seed-a9a850dd/tp"
)

// Config configures the collectors.
type Config struct {
	// Registerer receives the collectors; nil means
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Namespace prefixes every name; "" means "tp".
	Namespace string
	// ConstLabels are added to every metric.
	ConstLabels prometheus.Labels
	// Buckets are the latency histogram's, in seconds; nil means 50 µs to
	// about 10 s in steps of 2.5x.
	Buckets []float64
}

// Plugin is the plugin.
type Plugin struct {
	callsServed, callsMade *prometheus.CounterVec
	servedTime, madeTime   *prometheus.HistogramVec
	pushesIn, pushesOut    *prometheus.CounterVec
	sessions               prometheus.Gauge
	streams                *prometheus.CounterVec
	streamTime             *prometheus.HistogramVec
	streamsOpen            *prometheus.GaugeVec
	open                   sync.Map // *tp.Stream: counted in streamsOpen
	peer                   atomic.Pointer[tp.Peer]
}

var (
	_ tp.PreNewPeerPlugin       = (*Plugin)(nil)
	_ tp.PostNewPeerPlugin      = (*Plugin)(nil)
	_ tp.PostDialPlugin         = (*Plugin)(nil)
	_ tp.PostAcceptPlugin       = (*Plugin)(nil)
	_ tp.PostDisconnectPlugin   = (*Plugin)(nil)
	_ tp.PostWriteReplyPlugin   = (*Plugin)(nil)
	_ tp.CallDonePlugin         = (*Plugin)(nil)
	_ tp.PostReadPushBodyPlugin = (*Plugin)(nil)
	_ tp.PostWritePushPlugin    = (*Plugin)(nil)
	_ tp.StreamOpenPlugin       = (*Plugin)(nil)
	_ tp.StreamDonePlugin       = (*Plugin)(nil)
)

// New makes the collectors and registers them; it fails if the registry
// already holds collectors of the same names and labels.
func New(cfg Config) (*Plugin, error) {
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.DefaultRegisterer
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "tp"
	}
	if cfg.Buckets == nil {
		cfg.Buckets = prometheus.ExponentialBuckets(50e-6, 2.5, 14)
	}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: cfg.Namespace, Name: name, Help: help, ConstLabels: cfg.ConstLabels}
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		o := opts(name, help)
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: o.Namespace, Name: o.Name, Help: o.Help,
			ConstLabels: o.ConstLabels, Buckets: cfg.Buckets}, []string{"service_method"})
	}
	m := &Plugin{
		callsServed: prometheus.NewCounterVec(prometheus.CounterOpts(opts("calls_served_total", "CALLs answered, by service method and status code.")), []string{"service_method", "code"}),
		callsMade:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("calls_made_total", "CALLs made, by service method and outcome code.")), []string{"service_method", "code"}),
		servedTime:  histogram("call_served_seconds", "Time from reading a CALL to writing its reply."),
		madeTime:    histogram("call_made_seconds", "Time from making a CALL to its outcome."),
		pushesIn:    prometheus.NewCounterVec(prometheus.CounterOpts(opts("pushes_received_total", "PUSHes that reached a handler.")), []string{"service_method"}),
		pushesOut:   prometheus.NewCounterVec(prometheus.CounterOpts(opts("pushes_sent_total", "PUSHes sent.")), []string{"service_method"}),
		sessions:    prometheus.NewGauge(prometheus.GaugeOpts(opts("sessions", "Sessions held."))),
		streams:     prometheus.NewCounterVec(prometheus.CounterOpts(opts("streams_total", "Streams ended, by service method, side (opened or accepted) and outcome code.")), []string{"service_method", "side", "code"}),
		streamsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("streams_open", "Streams open now, by side (opened or accepted).")), []string{"side"}),
	}
	so := opts("stream_seconds", "Streams' lives, from opening to end.")
	m.streamTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: so.Namespace, Name: so.Name, Help: so.Help,
		ConstLabels: so.ConstLabels, Buckets: cfg.Buckets}, []string{"service_method", "side"})
	pool := func(running bool) func() float64 {
		return func() float64 {
			p := m.peer.Load()
			if p == nil {
				return 0
			}
			r, size := p.PoolUsage()
			if running {
				return float64(r)
			}
			return float64(size)
		}
	}
	dropped := func() float64 {
		if p := m.peer.Load(); p != nil {
			return float64(p.DroppedPushes())
		}
		return 0
	}
	collectors := []prometheus.Collector{m.callsServed, m.callsMade, m.servedTime, m.madeTime, m.pushesIn, m.pushesOut, m.sessions,
		m.streams, m.streamTime, m.streamsOpen,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("handlers_running", "Handlers running now.")), pool(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("handler_pool_size", "Handlers that may run at once.")), pool(false)),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("pushes_dropped_total", "PUSHes no handler took: no route, a refusing hook, a full pool.")), dropped),
	}
	for i, c := range collectors {
		if err := cfg.Registerer.Register(c); err != nil {
			for _, done := range collectors[:i] {
				cfg.Registerer.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

// Name implements tp.Plugin.
func (m *Plugin) Name() string { return "metrics" }

// PreNewPeer turns on CountTime, which the latencies need.
func (m *Plugin) PreNewPeer(cfg *tp.PeerConfig) error {
	cfg.CountTime = true
	return nil
}

// PostNewPeer keeps the peer, for the pool gauges.
func (m *Plugin) PostNewPeer(p *tp.Peer) error {
	m.peer.Store(p)
	return nil
}

var countedKey = tp.NewKey[bool]("metrics counted")

// PostDial counts a dialed session (not its redials).
func (m *Plugin) PostDial(s *tp.Session, redial bool) error {
	if !redial {
		m.count(s)
	}
	return nil
}

// PostAccept counts an accepted session.
func (m *Plugin) PostAccept(s *tp.Session) error {
	m.count(s)
	return nil
}

func (m *Plugin) count(s *tp.Session) {
	countedKey.Set(s, true)
	m.sessions.Inc()
}

// PostDisconnect uncounts a session this plugin counted.
func (m *Plugin) PostDisconnect(s *tp.Session) {
	if _, ok := countedKey.Delete(s); ok {
		m.sessions.Dec()
	}
}

const (
	notFound = "(not found)"
	unknown  = "(unknown)" // served by the unknown handler, whatever name was sent
)

// served is the label of a message this end served: its route.
func served(route string, code tp.Code) string {
	switch {
	case code == tp.CodeNotFound:
		return notFound
	case route == "":
		return unknown
	}
	return route
}

// PostWriteReply counts a served call and its latency.
func (m *Plugin) PostWriteReply(c tp.WriteCtx) error {
	out := c.Output()
	code := out.Status.Code()
	name := served(c.Route(), code)
	m.callsServed.WithLabelValues(name, code.String()).Inc()
	if start := c.StartTime(); !start.IsZero() {
		m.servedTime.WithLabelValues(name).Observe(time.Since(start).Seconds())
	}
	return nil
}

// CallDone counts a call made and its latency, whatever its outcome.
func (m *Plugin) CallDone(c *tp.CallCmd) {
	m.callsMade.WithLabelValues(c.ServiceMethod(), c.Status().Code().String()).Inc()
	if !c.StartTime().IsZero() {
		m.madeTime.WithLabelValues(c.ServiceMethod()).Observe(c.CostTime().Seconds())
	}
}

// PostReadPushBody counts a push that reached its handler.
func (m *Plugin) PostReadPushBody(c tp.ReadCtx) error {
	m.pushesIn.WithLabelValues(served(c.Route(), tp.CodeOK)).Inc()
	return nil
}

// PostWritePush counts a push sent.
func (m *Plugin) PostWritePush(c tp.WriteCtx) error {
	m.pushesOut.WithLabelValues(c.Output().ServiceMethod).Inc()
	return nil
}

func side(s *tp.Stream) string {
	if s.Opened() {
		return "opened"
	}
	return "accepted"
}

// StreamOpen counts a stream open.
func (m *Plugin) StreamOpen(s *tp.Stream) error {
	m.open.Store(s, true)
	m.streamsOpen.WithLabelValues(side(s)).Inc()
	return nil
}

// StreamDone counts a stream ended, its outcome and life.
func (m *Plugin) StreamDone(s *tp.Stream) {
	code := tp.CodeOf(s.Err())
	name := s.ServiceMethod()
	if !s.Opened() {
		name = served(s.Route(), code)
	}
	if _, ok := m.open.LoadAndDelete(s); ok {
		m.streamsOpen.WithLabelValues(side(s)).Dec()
	}
	m.streams.WithLabelValues(name, side(s), code.String()).Inc()
	if start := s.StartTime(); !start.IsZero() {
		m.streamTime.WithLabelValues(name, side(s)).Observe(time.Since(start).Seconds())
	}
}
