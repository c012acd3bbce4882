package heartbeat_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/heartbeat"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

const interval = 50 * time.Millisecond

// pings counts the heartbeat calls a peer receives.
type pings struct{ n *atomic.Int64 }

func (pings) Name() string { return "ping-counter" }
func (p pings) PostReadCallHeader(c tp.ReadCtx) error {
	if c.Input().ServiceMethod == "/heartbeat" {
		p.n.Add(1)
	}
	return nil
}

func TestHeartbeat(t *testing.T) {
	tests := []struct {
		name          string
		server, cli   *heartbeat.Config // nil: no plugin at that end
		staysUpIdle   bool              // pings keep an idle session up
		bothCloseDead bool              // a dead network closes both ends
	}{
		{"both ping", &heartbeat.Config{Interval: interval}, &heartbeat.Config{Interval: interval}, true, true},
		{"server passive", &heartbeat.Config{Interval: interval, Passive: true}, &heartbeat.Config{Interval: interval}, true, true},
		{"client passive", &heartbeat.Config{Interval: interval}, &heartbeat.Config{Interval: interval, Passive: true}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var received atomic.Int64
			srvPs, cliPs := []tp.Plugin{pings{&received}}, []tp.Plugin{pings{&received}}
			if tt.server != nil {
				srvPs = append(srvPs, heartbeat.New(*tt.server))
			}
			if tt.cli != nil {
				cliPs = append(cliPs, heartbeat.New(*tt.cli))
			}
			srv := tptest.NewPeer(t, tp.PeerConfig{}, srvPs...)
			relay := tptest.NewRelay(t, tptest.Serve(t, srv))
			cli := tptest.NewPeer(t, tp.PeerConfig{}, cliPs...)
			sess := tptest.Dial(t, cli, relay.Addr)

			// Idle, with no user traffic, until twelve pings have kept it up.
			// Each follows a silent interval of its sender, so with two
			// senders that is at least six intervals: twice what silence
			// allows. Waiting on pings, not a clock, keeps it steady on a
			// slow machine.
			tptest.WaitFor(t, "twelve pings", func() bool { return received.Load() >= 12 })
			if !sess.Health() || srv.CountSession() != 1 {
				t.Fatalf("an idle session closed: client healthy %v, server sessions %d", sess.Health(), srv.CountSession())
			}

			relay.Freeze()
			start := time.Now()
			tptest.WaitFor(t, "both ends to close the dead session", func() bool {
				return srv.CountSession() == 0 && cli.CountSession() == 0
			})
			if took := time.Since(start); took < 2*interval {
				t.Fatalf("closed after %v, before the peer could have missed its beats", took)
			}
		})
	}
}

// Without the plugin a dead network goes unnoticed: the check above
// depends on it.
func TestNoHeartbeatNoClose(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	relay := tptest.NewRelay(t, tptest.Serve(t, srv))
	cli := tptest.NewPeer(t, tp.PeerConfig{})
	sess := tptest.Dial(t, cli, relay.Addr)
	relay.Freeze()
	time.Sleep(10 * interval)
	if !sess.Health() || srv.CountSession() != 1 {
		t.Fatal("a session closed with no heartbeat to close it")
	}
}
