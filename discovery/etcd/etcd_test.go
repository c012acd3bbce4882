package etcd_test

import (
	"context"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/discovery/etcd"
	"github.com/seed-a9a850dd/tp/internal/tptest"
)

// watching follows the resolver's sets of "svc" for a test.
func watching(t *testing.T, e *etcdProc) func() []string {
	t.Helper()
	cli := e.newClient()
	ctx, cancel := context.WithCancel(context.Background())
	sets, err := etcd.NewResolver(cli, "").Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	done := make(chan struct{})
	latest := make(chan []string)
	go func() {
		defer close(done)
		for {
			select {
			case set, ok := <-sets:
				if !ok {
					return
				}
				cur = nil
				for _, ep := range set {
					cur = append(cur, ep.Addr)
				}
				slices.Sort(cur)
			case latest <- cur:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cli.Close()
	})
	return func() []string { return <-latest }
}

// Joins and leaves reach a watching client within a second; a server that
// dies without closing leaves when its lease expires.
func TestJoinsAndLeaves(t *testing.T) {
	e := startEtcd(t)
	set := watching(t, e)

	cli := e.newClient()
	defer cli.Close()
	reg := etcd.Register(cli, "svc", etcd.Options{TTL: 2 * time.Second})
	peer := tptest.NewPeer(t, tp.PeerConfig{}, reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go peer.Serve(ln)
	addr := ln.Addr().String()
	took := waitFor(t, time.Second, "the join", func() bool { return slices.Equal(set(), []string{addr}) })
	t.Logf("join seen in %v", took)

	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, time.Second, "the leave", func() bool { return len(set()) == 0 })
	t.Logf("graceful leave seen in %v", took)

	s := startServer(t, e, "a", "")
	waitFor(t, time.Second, "the process's join", func() bool { return slices.Equal(set(), []string{s.addr}) })
	s.signal(syscall.SIGKILL)
	killed := time.Now()
	waitFor(t, 4*time.Second, "the lease to expire", func() bool { return len(set()) == 0 })
	t.Logf("a killed server left after %v (TTL 2 s)", time.Since(killed))
}

// Fifty callers; one of three servers is killed, then restarted.
func TestKillUnderLoad(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  discovery.Config
	}{
		{"fail-fast", discovery.Config{}},
		{"failover", discovery.Config{FailMode: discovery.Failover, Idempotent: func(string) bool { return true }}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startEtcd(t)
			var srvs []*serverProc
			for _, name := range []string{"a", "b", "c"} {
				srvs = append(srvs, startServer(t, e, name, ""))
			}
			c := newClient(t, e, tt.cfg)
			l := startLoad(c, 50, context.Background)
			defer l.stop()
			start := time.Now()
			for _, s := range srvs {
				waitFor(t, 3*time.Second, "calls on "+s.name, func() bool { return l.answeredSince(s.name, start) })
			}
			if errs := l.takeErrors(); len(errs) > 0 {
				t.Fatalf("%d calls failed before the kill: %v", len(errs), errs[0])
			}

			dead := srvs[1]
			dead.signal(syscall.SIGKILL)
			killed := time.Now()
			// Traffic is on the survivors at once.
			for _, s := range []*serverProc{srvs[0], srvs[2]} {
				took := waitFor(t, 500*time.Millisecond, "calls on "+s.name+" after the kill", func() bool { return l.answeredSince(s.name, killed.Add(100*time.Millisecond)) })
				t.Logf("%s answers %v after the kill", s.name, took+100*time.Millisecond)
			}
			time.Sleep(time.Second)
			errs := l.takeErrors()
			t.Logf("%d calls failed around the kill", len(errs))
			if tt.cfg.FailMode == discovery.Failover && len(errs) > 0 {
				t.Fatalf("with failover, %d calls failed: %v", len(errs), errs[0])
			}
			if len(errs) > 50 {
				t.Fatalf("%d calls failed; only the 50 in flight may", len(errs))
			}
			for _, err := range errs {
				if tp.CodeOf(err) != tp.CodeConnClosed {
					t.Fatalf("a call failed with %v; only calls in flight on the dead server may fail, with a connection error", err)
				}
			}

			// The same server back on its address: traffic within 2 s.
			back := startServer(t, e, "b2", dead.addr)
			restarted := time.Now()
			took := waitFor(t, 2*time.Second, "calls on the restarted server", func() bool { return l.answeredSince(back.name, restarted) })
			t.Logf("the restarted server answers %v after it was ready", took)
			if errs := l.takeErrors(); len(errs) > 0 {
				t.Fatalf("%d calls failed around the restart: %v", len(errs), errs[0])
			}
		})
	}
}

// A server stopped with SIGTERM closes gracefully: it deregisters, drains
// and closes, and no call fails.
func TestGracefulStopUnderLoad(t *testing.T) {
	e := startEtcd(t)
	var srvs []*serverProc
	for _, name := range []string{"a", "b", "c"} {
		srvs = append(srvs, startServer(t, e, name, ""))
	}
	c := newClient(t, e, discovery.Config{})
	l := startLoad(c, 50, context.Background)
	defer l.stop()
	start := time.Now()
	for _, s := range srvs {
		waitFor(t, 3*time.Second, "calls on "+s.name, func() bool { return l.answeredSince(s.name, start) })
	}
	if err := srvs[1].signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the server's graceful close: %v", err)
	}
	stopped := time.Now()
	time.Sleep(500 * time.Millisecond)
	if l.answeredSince("b", stopped) {
		t.Fatal("the stopped server answered after it exited")
	}
	if errs := l.takeErrors(); len(errs) > 0 {
		t.Fatalf("%d calls failed around a graceful stop; the first: %v", len(errs), errs[0])
	}
}

// etcd itself dies under load: the client keeps calling the servers it
// knows, and follows etcd again once it is back.
func TestEtcdRestartUnderLoad(t *testing.T) {
	e := startEtcd(t)
	srvs := []*serverProc{startServer(t, e, "a", ""), startServer(t, e, "b", "")}
	c := newClient(t, e, discovery.Config{})
	l := startLoad(c, 50, context.Background)
	defer l.stop()
	start := time.Now()
	for _, s := range srvs {
		waitFor(t, 3*time.Second, "calls on "+s.name, func() bool { return l.answeredSince(s.name, start) })
	}

	e.kill()
	down := time.Now()
	time.Sleep(3 * time.Second) // past the servers' lease TTL
	for _, s := range srvs {
		if !l.answeredSince(s.name, down.Add(2500*time.Millisecond)) {
			t.Fatalf("%s took no call while etcd was down", s.name)
		}
	}
	e.start()
	// The client resynchronizes: a server that joins now is called.
	joined := startServer(t, e, "c", "")
	at := time.Now()
	took := waitFor(t, 5*time.Second, "calls on a server that joined after etcd's restart", func() bool { return l.answeredSince(joined.name, at) })
	t.Logf("the new server answers %v after it registered", took)
	// The old servers re-registered: a client that starts now finds them.
	c2 := newClient(t, e, discovery.Config{})
	got := map[string]bool{}
	waitFor(t, 5*time.Second, "a new client to find all three", func() bool {
		var who string
		if err := c2.Call(context.Background(), "/who", 0, &who); err == nil {
			got[who] = true
		}
		return len(got) == 3
	})
	if errs := l.takeErrors(); len(errs) > 0 {
		t.Fatalf("%d calls failed while etcd was down or back: %v", len(errs), errs[0])
	}
}
