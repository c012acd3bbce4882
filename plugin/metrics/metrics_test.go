package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/ignorecase"
	"github.com/seed-a9a850dd/tp/plugin/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func Add(ctx tp.CallCtx, n *int) (int, *tp.Status) {
	if *n < 0 {
		return 0, tp.NewStatus(tp.CodeInvalidArgument, "negative", nil)
	}
	return *n + 1, nil
}

func Slow(ctx tp.CallCtx, _ *struct{}) (int, *tp.Status) {
	time.Sleep(100 * time.Millisecond)
	return 0, nil
}

var pushed = make(chan struct{}, 4)

func Tick(ctx tp.PushCtx, _ *struct{}) *tp.Status {
	pushed <- struct{}{}
	return nil
}

func newMetrics(t *testing.T, reg *prometheus.Registry, peer string) *metrics.Plugin {
	t.Helper()
	m, err := metrics.New(metrics.Config{Registerer: reg, ConstLabels: prometheus.Labels{"peer": peer}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srvM := newMetrics(t, reg, "server")
	srv := tptest.NewPeer(t, tp.PeerConfig{}, srvM)
	srv.RouteCallFunc(Add)
	srv.RouteCallFunc(Slow)
	srv.RoutePushFunc(Tick)
	cli := tptest.NewPeer(t, tp.PeerConfig{}, newMetrics(t, reg, "client"))
	sess := tptest.Dial(t, cli, tptest.Serve(t, srv))
	ctx := context.Background()

	for range 3 {
		sess.Call(ctx, "/add", 1, nil)
	}
	sess.Call(ctx, "/add", -1, nil)
	sess.Call(ctx, "/no/such/thing", 1, nil)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	sess.Call(short, "/slow", nil, nil)
	cancel()
	sess.Push(ctx, "/tick", nil)
	<-pushed
	sess.Push(ctx, "/nobody/listens", nil)

	gauge := func(name string) float64 {
		return testutil.ToFloat64(gaugeFunc{reg, name})
	}
	tptest.WaitFor(t, "the slow call to be answered", func() bool {
		return count(t, reg, "tp_calls_served_total", "server", "/slow", "ok") == 1
	})
	checks := []struct {
		metric, peer, method, code string
		want                       float64
	}{
		{"tp_calls_served_total", "server", "/add", "ok", 3},
		{"tp_calls_served_total", "server", "/add", "invalid argument", 1},
		{"tp_calls_served_total", "server", "(not found)", "not found", 1},
		{"tp_calls_made_total", "client", "/add", "ok", 3},
		{"tp_calls_made_total", "client", "/add", "invalid argument", 1},
		{"tp_calls_made_total", "client", "/slow", "timeout", 1},
		{"tp_call_served_seconds", "server", "/add", "", 4},
		{"tp_call_made_seconds", "client", "/slow", "", 1},
		{"tp_pushes_sent_total", "client", "/tick", "", 1},
		{"tp_pushes_received_total", "server", "/tick", "", 1},
	}
	for _, c := range checks {
		if got := count(t, reg, c.metric, c.peer, c.method, c.code); got != c.want {
			t.Errorf("%s{peer=%s,service_method=%s,code=%q} = %v, want %v", c.metric, c.peer, c.method, c.code, got, c.want)
		}
	}
	tptest.WaitFor(t, "the dropped push", func() bool { return gauge("tp_pushes_dropped_total") == 1 })
	if got := gauge("tp_sessions"); got != 2 {
		t.Errorf("sessions over both peers = %v, want 2", got)
	}
	if got := gauge("tp_handler_pool_size"); got != 2*10000 {
		t.Errorf("pool sizes over both peers = %v", got)
	}
	sess.Close()
	tptest.WaitFor(t, "sessions to reach 0", func() bool { return gauge("tp_sessions") == 0 })

	if _, err := metrics.New(metrics.Config{Registerer: reg, ConstLabels: prometheus.Labels{"peer": "server"}}); err == nil {
		t.Fatal("registering the same collectors twice succeeded")
	}
}

// count returns a counter's value, or a histogram's sample count, for the
// series with these labels ("" code: no code label).
func count(t *testing.T, reg *prometheus.Registry, name, peer, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"peer": peer, "service_method": method}
			if code != "" {
				want["code"] = code
			}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// gaugeFunc sums a gauge over every peer, as a collector for testutil.
type gaugeFunc struct {
	reg  *prometheus.Registry
	name string
}

func (g gaugeFunc) Describe(ch chan<- *prometheus.Desc) {}
func (g gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "sum", nil, nil), prometheus.GaugeValue, sum)
}

// Labels come from the route that served the call: case variants a
// client sends through ignorecase are one series, not one each.
func TestMetricsLabelIsTheRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := tptest.NewPeer(t, tp.PeerConfig{}, ignorecase.New(), newMetrics(t, reg, "server"))
	srv.RouteCallFunc(Add)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, srv))
	for _, name := range []string{"/add", "/ADD", "/Add", "/aDd"} {
		if err := sess.Call(context.Background(), name, 1, nil).Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	tptest.WaitFor(t, "four calls under /add", func() bool {
		return count(t, reg, "tp_calls_served_total", "server", "/add", "ok") == 4
	})
	for _, name := range []string{"/ADD", "/Add", "/aDd"} {
		if n := count(t, reg, "tp_calls_served_total", "server", name, "ok"); n != 0 {
			t.Fatalf("a series for %s: %v", name, n)
		}
	}
}

// Calls the unknown handler takes (a proxy's, say) share one label, so a
// client sending random names cannot grow the metric set.
func TestMetricsUnknownHandlerOneLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := tptest.NewPeer(t, tp.PeerConfig{}, newMetrics(t, reg, "server"))
	srv.SetUnknownCall(func(tp.UnknownCallCtx) (any, error) { return "seen", nil })
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, srv))
	for i := range 5 {
		if err := sess.Call(context.Background(), fmt.Sprint("/random/", i), 1, nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tptest.WaitFor(t, "five calls under (unknown)", func() bool {
		return count(t, reg, "tp_calls_served_total", "server", "(unknown)", "ok") == 5
	})
	if n := count(t, reg, "tp_calls_served_total", "server", "/random/0", "ok"); n != 0 {
		t.Fatalf("a series for a name the client chose: %v", n)
	}
}

func Echo(ctx tp.StreamCtx, s *tp.Stream) error {
	for {
		var v int
		if err := s.Recv(&v); err != nil {
			return nil
		}
		if err := s.Send(v); err != nil {
			return err
		}
	}
}

// Streams are counted at both ends, by side and outcome; random names
// sent to no route share one label.
func TestMetricsStreams(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := tptest.NewPeer(t, tp.PeerConfig{}, newMetrics(t, reg, "server"))
	srv.RouteStreamFunc(Echo)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, newMetrics(t, reg, "client")), tptest.Serve(t, srv))
	ctx := context.Background()
	gauge := func(name string) float64 { return testutil.ToFloat64(gaugeFunc{reg, name}) }
	for range 3 {
		s, err := sess.OpenStream(ctx, "/echo")
		if err != nil {
			t.Fatal(err)
		}
		s.Send(1)
		s.Recv(new(int))
		tptest.WaitFor(t, "a stream open at both ends", func() bool { return gauge("tp_streams_open") == 2 })
		s.CloseSend()
		s.Recv(new(int))
	}
	for i := range 2 {
		s, err := sess.OpenStream(ctx, fmt.Sprint("/random/", i))
		if err != nil {
			t.Fatal(err)
		}
		s.Recv(new(int))
	}
	tptest.WaitFor(t, "every stream counted", func() bool {
		return count(t, reg, "tp_streams_total", "server", "/echo", "ok") == 3 &&
			count(t, reg, "tp_streams_total", "server", "(not found)", "not found") == 2 &&
			count(t, reg, "tp_streams_total", "client", "/echo", "ok") == 3
	})
	if n := count(t, reg, "tp_stream_seconds", "server", "/echo", ""); n != 3 {
		t.Fatalf("stream lives observed: %v", n)
	}
	tptest.WaitFor(t, "no stream open", func() bool { return gauge("tp_streams_open") == 0 })
}
