package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// server is one tp server of the service "svc", counting what it serves.
type server struct {
	i        int
	peer     *tp.Peer
	addr     string
	calls    atomic.Int64
	pushes   atomic.Int64
	slow     atomic.Int64  // ms each /who waits
	failNext atomic.Int64  // /who calls to fail with CodeInternal
	crashes  *atomic.Int64 // /crash calls to end their session, shared by the servers
	down     atomic.Bool   // /who fails with CodeInternal
}

// Who is the service's route: it answers with the server's index.
func (s *server) Who(ctx tp.CallCtx, _ *int) (int, error) {
	s.calls.Add(1)
	if d := s.slow.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d) * time.Millisecond):
		case <-ctx.Context().Done():
			return 0, ctx.Context().Err()
		}
	}
	if s.down.Load() || s.failNext.Add(-1) >= 0 {
		return 0, tp.NewStatus(tp.CodeInternal, "failing on purpose", nil)
	}
	return s.i, nil
}

// Crash ends the session it is called on, as a server dying mid-call
// would, as many times as crashes says; then it answers.
func (s *server) Crash(ctx tp.CallCtx, _ *int) (int, error) {
	s.calls.Add(1)
	if s.crashes != nil && s.crashes.Add(-1) >= 0 {
		ctx.Session().Close()
	}
	return s.i, nil
}

func (s *server) Note(tp.PushCtx, *string) error {
	s.pushes.Add(1)
	return nil
}

func startServer(t *testing.T, i int, cfg tp.PeerConfig) *server {
	t.Helper()
	s := &server{i: i}
	s.peer = tptest.NewPeer(t, cfg)
	tp.HandleCall(s.peer.Router(), "/who", s.Who)
	tp.HandleCall(s.peer.Router(), "/crash", s.Crash)
	tp.HandlePush(s.peer.Router(), "/note", s.Note)
	s.addr = tptest.Serve(t, s.peer)
	return s
}

func startServers(t *testing.T, n int) ([]*server, *discovery.Static) {
	t.Helper()
	var srvs []*server
	var eps []discovery.Endpoint
	for i := range n {
		s := startServer(t, i, tp.PeerConfig{})
		srvs = append(srvs, s)
		eps = append(eps, discovery.Endpoint{Addr: s.addr})
	}
	r := new(discovery.Static)
	r.Set("svc", eps...)
	return srvs, r
}

func newClient(t *testing.T, r discovery.Resolver, cfg discovery.Config) *discovery.Client {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = "svc"
	}
	c, err := discovery.NewClient(tptest.NewPeer(t, tp.PeerConfig{}), r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// load calls /who from n goroutines until stop is called, which returns
// the errors seen and how many calls went to each server index.
func load(t *testing.T, c *discovery.Client, n int) (stop func() (errs []error, per map[int]int)) {
	var mu sync.Mutex
	var errs []error
	per := map[int]int{}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var who int
				err := c.Call(ctx, "/who", 0, &who)
				cancel()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					per[who]++
				}
				mu.Unlock()
			}
		}()
	}
	return func() ([]error, map[int]int) {
		close(quit)
		wg.Wait()
		return errs, per
	}
}

func callN(t *testing.T, c *discovery.Client, n int) map[int]int {
	t.Helper()
	per := map[int]int{}
	for range n {
		var who int
		if err := c.Call(context.Background(), "/who", 0, &who); err != nil {
			t.Fatal(err)
		}
		per[who]++
	}
	return per
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	srvs, r := startServers(t, 3)
	c := newClient(t, r, discovery.Config{})
	waitConnected(t, c, 3)
	stop := load(t, c, 30)
	tptest.WaitFor(t, "3000 calls", func() bool {
		var n int64
		for _, s := range srvs {
			n += s.calls.Load()
		}
		return n >= 3000
	})
	errs, per := stop()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	total := per[0] + per[1] + per[2]
	for i := range 3 {
		if share := float64(per[i]) / float64(total); math.Abs(share-1.0/3) > 0.05/3 {
			t.Errorf("server %d took %.3f of %d calls, want 1/3 ± 5%%: %v", i, share, total, per)
		}
	}
}

func TestWeightedRandom(t *testing.T) {
	srvs, r := startServers(t, 2)
	r.Set("svc", discovery.Endpoint{Addr: srvs[0].addr, Weight: 1}, discovery.Endpoint{Addr: srvs[1].addr, Weight: 3})
	c := newClient(t, r, discovery.Config{Selector: discovery.WeightedRandom()})
	waitConnected(t, c, 2)
	per := callN(t, c, 4000)
	if share := float64(per[1]) / 4000; math.Abs(share-0.75) > 0.04 {
		t.Fatalf("the weight-3 endpoint took %.3f of the calls, want 0.75: %v", share, per)
	}
}

// A slow endpoint gets few calls from LeastPending, many from RoundRobin.
func TestLeastPendingAvoidsTheSlow(t *testing.T) {
	srvs, r := startServers(t, 2)
	srvs[0].slow.Store(20)
	c := newClient(t, r, discovery.Config{Selector: discovery.LeastPending()})
	stop := load(t, c, 16)
	time.Sleep(500 * time.Millisecond)
	errs, per := stop()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if per[0]*5 > per[1] {
		t.Fatalf("the slow endpoint took %d calls against the fast one's %d; want under a fifth", per[0], per[1])
	}
}

func TestConsistentHash(t *testing.T) {
	key := func(r *discovery.Request) string { return fmt.Sprint(r.Arg) }
	sel := discovery.ConsistentHash(key)
	cands := func(n int) []discovery.Candidate {
		var cs []discovery.Candidate
		for i := range n {
			cs = append(cs, discovery.Candidate{Endpoint: discovery.Endpoint{Addr: fmt.Sprintf("10.0.0.%d:9000", i)}})
		}
		return cs
	}
	place := func(n int) map[int]string {
		cs := cands(n)
		m := map[int]string{}
		for k := range 10000 {
			m[k] = cs[sel.Select(&discovery.Request{Arg: k}, cs)].Addr
		}
		return m
	}
	moved := func(a, b map[int]string) float64 {
		n := 0
		for k := range a {
			if a[k] != b[k] {
				n++
			}
		}
		return float64(n) / float64(len(a))
	}
	two, three, four := place(2), place(3), place(4)
	if m := moved(three, place(3)); m != 0 {
		t.Fatalf("%.3f of the keys moved with the set unchanged", m)
	}
	if m := moved(two, three); math.Abs(m-1.0/3) > 0.03 {
		t.Errorf("a third endpoint moved %.3f of the keys, want about 1/3", m)
	}
	if m := moved(three, four); math.Abs(m-1.0/4) > 0.03 {
		t.Errorf("a fourth endpoint moved %.3f of the keys, want about 1/4", m)
	}
	// Only the keys of an endpoint that leaves move.
	cs := cands(3)
	for k, addr := range three {
		if addr == cs[1].Addr {
			continue
		}
		rest := []discovery.Candidate{cs[0], cs[2]}
		if got := rest[sel.Select(&discovery.Request{Arg: k}, rest)].Addr; got != addr {
			t.Fatalf("key %d moved from %s to %s when another endpoint left", k, addr, got)
		}
	}

	// Over the network: a key stays on one server.
	srvs, r := startServers(t, 3)
	c := newClient(t, r, discovery.Config{Selector: sel})
	waitConnected(t, c, len(srvs))
	for k := range 20 {
		first := -1
		for range 5 {
			var who int
			if err := c.Call(context.Background(), "/who", k, &who); err != nil {
				t.Fatal(err)
			}
			if first >= 0 && who != first {
				t.Fatalf("key %d went to server %d, then %d", k, first, who)
			}
			first = who
		}
	}
}

// A server that closes gracefully under load costs no call, in any mode:
// the calls it refuses unrun go elsewhere, and it finishes the rest.
func TestGracefulCloseLosesNothing(t *testing.T) {
	srvs, r := startServers(t, 3)
	for _, s := range srvs {
		s.slow.Store(2)
	}
	c := newClient(t, r, discovery.Config{})
	stop := load(t, c, 50)
	tptest.WaitFor(t, "calls on every server", func() bool { return srvs[2].calls.Load() > 100 })
	if err := srvs[2].peer.Close(); err != nil {
		t.Fatal(err)
	}
	before := srvs[0].calls.Load() + srvs[1].calls.Load()
	tptest.WaitFor(t, "the survivors to carry on", func() bool { return srvs[0].calls.Load()+srvs[1].calls.Load() > before+500 })
	errs, _ := stop()
	if len(errs) > 0 {
		t.Fatalf("%d calls failed, the first: %v", len(errs), errs[0])
	}
}

// A connection that breaks mid-call fails a call that may have run, unless
// the route is idempotent and the mode fails over.
func TestFailover(t *testing.T) {
	for _, tt := range []struct {
		name       string
		mode       discovery.FailMode
		idempotent bool
		wantErr    bool
	}{
		{"fail-fast", discovery.FailFast, true, true},
		{"failover, not idempotent", discovery.Failover, false, true},
		{"failover, idempotent", discovery.Failover, true, false},
		{"failtry, idempotent", discovery.Failtry, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srvs, r := startServers(t, 2)
			c := newClient(t, r, discovery.Config{
				FailMode:   tt.mode,
				Idempotent: func(string) bool { return tt.idempotent },
			})
			waitConnected(t, c, len(srvs))
			crashes := new(atomic.Int64)
			crashes.Store(1) // the first server called
			for _, s := range srvs {
				s.crashes = crashes
			}
			err := c.Call(context.Background(), "/crash", 0, new(int))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Call: %v, want an error: %v", err, tt.wantErr)
			}
			n := srvs[0].calls.Load() + srvs[1].calls.Load()
			if tt.wantErr {
				if tp.CodeOf(err) != tp.CodeConnClosed || n != 1 {
					t.Fatalf("Call: %v after %d runs; want CodeConnClosed after 1", err, n)
				}
				return
			}
			if n != 2 {
				t.Fatalf("the handler ran %d times, want twice", n)
			}
		})
	}
}

// waitConnected waits for the client's session to each of n servers.
func waitConnected(t *testing.T, c *discovery.Client, n int) {
	t.Helper()
	tptest.WaitFor(t, "a session to every server", func() bool { return len(c.Connected()) == n })
}

// Failtry tries the same endpoint again.
func TestFailtrySameEndpoint(t *testing.T) {
	srvs, r := startServers(t, 2)
	c := newClient(t, r, discovery.Config{FailMode: discovery.Failtry, Idempotent: func(string) bool { return true },
		Selector: discovery.ConsistentHash(func(*discovery.Request) string { return "k" })})
	waitConnected(t, c, len(srvs))
	var who int
	if err := c.Call(context.Background(), "/who", 0, &who); err != nil {
		t.Fatal(err)
	}
	owner, other := srvs[who], srvs[1-who]
	owner.calls.Store(0)
	owner.failNext.Store(1)
	if err := c.Call(context.Background(), "/who", 0, &who); err != nil {
		t.Fatal(err)
	}
	if who != owner.i || owner.calls.Load() != 2 || other.calls.Load() != 0 {
		t.Fatalf("answered by %d after %d calls to %d and %d to the other; want two to the same", who, owner.calls.Load(), owner.i, other.calls.Load())
	}
}

func TestBackupRequest(t *testing.T) {
	srvs, r := startServers(t, 2)
	one := discovery.ConsistentHash(func(*discovery.Request) string { return "k" }) // every call to one server first
	c := newClient(t, r, discovery.Config{
		FailMode:    discovery.Backup,
		BackupDelay: 20 * time.Millisecond,
		Idempotent:  func(string) bool { return true },
		Selector:    one,
	})
	waitConnected(t, c, 2)
	var first int
	if err := c.Call(context.Background(), "/who", 0, &first); err != nil {
		t.Fatal(err)
	}
	slow, fast := srvs[first], srvs[1-first]
	slow.slow.Store(2000)
	start := time.Now()
	var who int
	if err := c.Call(context.Background(), "/who", 0, &who); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second || who != fast.i {
		t.Fatalf("answered by %d after %v; want the backup's answer, from %d, at once", who, took, fast.i)
	}

	// Not idempotent: no backup; the slow server's answer is awaited.
	c2 := newClient(t, r, discovery.Config{FailMode: discovery.Backup, BackupDelay: 20 * time.Millisecond, Selector: one})
	waitConnected(t, c2, 2)
	slow.slow.Store(200)
	before := fast.calls.Load()
	if err := c2.Call(context.Background(), "/who", 0, &who); err != nil {
		t.Fatal(err)
	}
	if who != slow.i || fast.calls.Load() != before {
		t.Fatalf("a route not idempotent was backed up: answered by %d", who)
	}
}

// An endpoint that keeps failing is ejected, probed after OpenFor, and
// takes calls again once it answers well.
func TestBreakerEjectsAndProbes(t *testing.T) {
	srvs, r := startServers(t, 2)
	srvs[0].down.Store(true)
	c := newClient(t, r, discovery.Config{Breaker: discovery.BreakerConfig{ConsecutiveFailures: 3, OpenFor: 300 * time.Millisecond}})
	waitConnected(t, c, 2)
	var fails int
	for range 20 {
		if err := c.Call(context.Background(), "/who", 0, new(int)); err != nil {
			fails++
		}
	}
	if fails != 3 {
		t.Fatalf("%d calls failed; the breaker should open after 3", fails)
	}
	srvs[0].calls.Store(0)
	callN(t, c, 20)
	if n := srvs[0].calls.Load(); n != 0 {
		t.Fatalf("the ejected endpoint got %d calls", n)
	}
	srvs[0].down.Store(false)
	time.Sleep(350 * time.Millisecond)
	per := callN(t, c, 20)
	if per[0] < 8 {
		t.Fatalf("the endpoint back in service took %d of 20 calls: %v", per[0], per)
	}
}

func TestPoolAndBroadcast(t *testing.T) {
	srvs, r := startServers(t, 3)
	c := newClient(t, r, discovery.Config{PoolSize: 3})
	callN(t, c, 3)
	tptest.WaitFor(t, "three sessions per server", func() bool {
		for _, s := range srvs {
			if s.peer.CountSession() != 3 {
				return false
			}
		}
		return true
	})
	waitConnected(t, c, 3) // Broadcast goes to the endpoints the client has sessions to
	if err := c.Broadcast(context.Background(), "/note", "hi"); err != nil {
		t.Fatal(err)
	}
	tptest.WaitFor(t, "the broadcast on every server", func() bool {
		for _, s := range srvs {
			if s.pushes.Load() != 1 {
				return false
			}
		}
		return true
	})
	if err := c.Push(context.Background(), "/note", "one"); err != nil {
		t.Fatal(err)
	}
	tptest.WaitFor(t, "the push", func() bool {
		return srvs[0].pushes.Load()+srvs[1].pushes.Load()+srvs[2].pushes.Load() == 4
	})
}

// The client follows its resolver: a server added takes calls, one removed
// takes no more, and its session is closed.
func TestFollowsTheResolver(t *testing.T) {
	srvs, r := startServers(t, 3)
	r.Set("svc", discovery.Endpoint{Addr: srvs[0].addr})
	c := newClient(t, r, discovery.Config{})
	if per := callN(t, c, 10); per[0] != 10 {
		t.Fatalf("%v", per)
	}
	r.Set("svc", discovery.Endpoint{Addr: srvs[0].addr}, discovery.Endpoint{Addr: srvs[1].addr}, discovery.Endpoint{Addr: srvs[2].addr})
	tptest.WaitFor(t, "calls on all three", func() bool {
		per := callN(t, c, 3)
		return per[0] == 1 && per[1] == 1 && per[2] == 1
	})
	r.Set("svc", discovery.Endpoint{Addr: srvs[1].addr})
	tptest.WaitFor(t, "the removed ones to be left", func() bool {
		return srvs[0].peer.CountSession() == 0 && srvs[2].peer.CountSession() == 0
	})
	if per := callN(t, c, 10); per[1] != 10 {
		t.Fatalf("%v", per)
	}
	if got := c.Endpoints(); len(got) != 1 || got[0].Addr != srvs[1].addr {
		t.Fatalf("Endpoints: %v", got)
	}
}

func TestNoEndpoint(t *testing.T) {
	r := new(discovery.Static)
	r.Set("svc")
	c := newClient(t, r, discovery.Config{})
	start := time.Now()
	err := c.Call(context.Background(), "/who", 0, new(int))
	if tp.CodeOf(err) != tp.CodeDialFailed || time.Since(start) > time.Second {
		t.Fatalf("with no endpoint: %v after %v", err, time.Since(start))
	}
	// An endpoint nobody serves: the call waits for its first dial only.
	ln := tptest.Serve(t, tptest.NewPeer(t, tp.PeerConfig{})) // a port, then closed
	r.Set("svc", discovery.Endpoint{Addr: "127.0.0.1:1"}, discovery.Endpoint{Addr: ln})
	_ = ln
	c2 := newClient(t, r, discovery.Config{Service: "svc", DialTimeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = c2.Call(ctx, "/missing", 0, new(int))
	if err == nil {
		t.Fatal("a call with no route succeeded")
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Call(context.Background(), "/who", 0, new(int)); !errors.Is(err, err) || err == nil {
		t.Fatal("a call on a closed client succeeded")
	}
}

// A server that refuses the pool's extra sessions (MaxSessions) still
// serves through the one it took; the refused slots back off and retry
// rather than spin.
func TestServerRefusesExtraSessions(t *testing.T) {
	s := startServer(t, 0, tp.PeerConfig{MaxSessions: 1})
	r := new(discovery.Static)
	r.Set("svc", discovery.Endpoint{Addr: s.addr})
	c := newClient(t, r, discovery.Config{PoolSize: 4, MaxBackoff: 200 * time.Millisecond})
	per := callN(t, c, 50)
	if per[0] != 50 {
		t.Fatalf("%v", per)
	}
	time.Sleep(300 * time.Millisecond)
	if n := s.peer.CountSession(); n != 1 {
		t.Fatalf("the server holds %d sessions, its limit is 1", n)
	}
}

// An endpoint that leaves the set while a call is in flight to it answers
// that call, and its session closes as soon as the call is done.
func TestLeavingEndpointFinishesItsCall(t *testing.T) {
	srvs, r := startServers(t, 2)
	srvs[0].slow.Store(300)
	c := newClient(t, r, discovery.Config{DialTimeout: 10 * time.Second,
		Selector: discovery.ConsistentHash(func(*discovery.Request) string { return "k" })})
	waitConnected(t, c, 2)
	var owner int
	if err := c.Call(context.Background(), "/who", 0, &owner); err != nil {
		t.Fatal(err)
	}
	srvs[owner].slow.Store(300)
	srvs[1-owner].slow.Store(0)
	done := make(chan error, 1)
	go func() { done <- c.Call(context.Background(), "/who", 0, new(int)) }()
	tptest.WaitFor(t, "the call to start", func() bool { return srvs[owner].calls.Load() == 2 })
	r.Set("svc", discovery.Endpoint{Addr: srvs[1-owner].addr})
	if err := <-done; err != nil {
		t.Fatalf("the call in flight to a leaving endpoint: %v", err)
	}
	start := time.Now()
	tptest.WaitFor(t, "the leaving endpoint's session to close", func() bool { return srvs[owner].peer.CountSession() == 0 })
	if took := time.Since(start); took > time.Second {
		t.Fatalf("closed %v after its last call, not at once", took)
	}
}

// A network that stops forwarding without a reset: calls to that endpoint
// end by their deadline, its breaker ejects it, and the calls after go to
// the endpoint that answers.
func TestFrozenLinkIsEjected(t *testing.T) {
	srvs, r := startServers(t, 2)
	relay := tptest.NewRelay(t, srvs[0].addr)
	r.Set("svc", discovery.Endpoint{Addr: relay.Addr}, discovery.Endpoint{Addr: srvs[1].addr})
	c := newClient(t, r, discovery.Config{Breaker: discovery.BreakerConfig{ConsecutiveFailures: 2, OpenFor: time.Minute}})
	waitConnected(t, c, 2)
	relay.Freeze()
	var timeouts int
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := c.Call(ctx, "/who", 0, new(int))
		cancel()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("a call took %v past its 100 ms deadline", took)
		}
		if err != nil {
			if tp.CodeOf(err) != tp.CodeTimeout {
				t.Fatalf("a call over the frozen link: %v, want a timeout", err)
			}
			timeouts++
		}
	}
	if timeouts != 2 {
		t.Fatalf("%d calls timed out; the breaker should eject the frozen endpoint after 2", timeouts)
	}
}
