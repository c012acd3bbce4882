package tp_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Blocker's handlers block until released, and report what they saw.
type Blocker struct{ tp.CallCtx }

type blockState struct {
	entered  atomic.Int64
	release  chan struct{}
	deadline chan time.Time // the handler context's deadline
	ctxDone  chan error     // the handler context's error once it ends
}

// blockStates keys each test's state by its server peer, so a handler
// finishing late cannot touch the next test's state.
var blockStates sync.Map // *tp.Peer -> *blockState

func newBlocks() *blockState {
	return &blockState{release: make(chan struct{}), deadline: make(chan time.Time, 1), ctxDone: make(chan error, 1)}
}

// routes registers Blocker on srv with bs as its state.
func (bs *blockState) routes(srv *tp.Peer) {
	blockStates.Store(srv, bs)
	srv.RouteCall(new(Blocker))
}

func (b *Blocker) state() *blockState {
	bs, _ := blockStates.Load(b.Session().Peer())
	return bs.(*blockState)
}

// Wait blocks until released and echoes its argument.
func (b *Blocker) Wait(arg *int) (int, *tp.Status) {
	bs := b.state()
	bs.entered.Add(1)
	<-bs.release
	return *arg, nil
}

// Echo returns its argument at once.
func (b *Blocker) Echo(arg *int) (int, *tp.Status) { return *arg, nil }

// Ctx waits for its context to end and reports it, then holds its reply
// until released, so the caller's own deadline decides the call.
func (b *Blocker) Ctx(arg *int) (int, *tp.Status) {
	bs := b.state()
	d, _ := b.Context().Deadline()
	bs.deadline <- d
	<-b.Context().Done()
	bs.ctxDone <- b.Context().Err()
	<-bs.release
	return 0, nil
}

func TestDeadlineTravelsToHandler(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, bs.routes)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	start := time.Now()
	st := sess.Call(ctx, "/blocker/ctx", 1, nil).Status()
	if tp.CodeOf(st) != tp.CodeTimeout {
		t.Fatalf("got %v, want timeout", st)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("the caller waited %v past a 200ms deadline", waited)
	}
	if got := <-bs.deadline; got.Sub(want).Abs() > 100*time.Millisecond {
		t.Fatalf("handler deadline %v, caller's %v", got, want)
	}
	select {
	case err := <-bs.ctxDone:
		if err != context.DeadlineExceeded {
			t.Fatalf("handler context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's Context() never ended")
	}
}

func TestCancelStopsWaitingAtOnce(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, bs.routes)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFor(t, "the handler to start", func() bool { return bs.entered.Load() == 1 })
		cancel()
	}()
	if st := sess.Call(ctx, "/blocker/wait", 1, nil).Status(); tp.CodeOf(st) != tp.CodeCanceled {
		t.Fatalf("got %v, want canceled", st)
	}
	// The session still works.
	var n int
	if err := sess.Call(context.Background(), "/blocker/echo", 5, &n).Err(); err != nil || n != 5 {
		t.Fatalf("after a canceled call: %d, %v", n, err)
	}
}

func TestContextAge(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{ContextAge: 100 * time.Millisecond},
		bs.routes)
	if st := sess.Call(context.Background(), "/blocker/ctx", 1, nil).Status(); tp.CodeOf(st) != tp.CodeTimeout {
		t.Fatalf("config age: got %v, want timeout", st)
	}
	<-bs.deadline
	<-bs.ctxDone
	st := sess.Call(context.Background(), "/blocker/ctx", 1, nil, tp.WithContextAge(50*time.Millisecond)).Status()
	if tp.CodeOf(st) != tp.CodeTimeout {
		t.Fatalf("WithContextAge: got %v, want timeout", st)
	}
	<-bs.deadline
	<-bs.ctxDone
}

func TestCutConnectionFailsPendingCalls(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, bs.routes)
	const n = 20
	results := make(chan *tp.Status, n)
	for i := 0; i < n; i++ {
		go func() { results <- sess.Call(context.Background(), "/blocker/wait", i, nil).Status() }()
	}
	waitFor(t, "all calls to reach the handler", func() bool { return bs.entered.Load() == n })
	cut := time.Now()
	for s := range srv.Sessions() {
		s.Close()
	}
	for i := 0; i < n; i++ {
		if st := <-results; tp.CodeOf(st) != tp.CodeConnClosed {
			t.Fatalf("got %v, want connection closed", st)
		}
	}
	if took := time.Since(cut); took > time.Second {
		t.Fatalf("pending calls took %v to fail", took)
	}
	if st := sess.Call(context.Background(), "/blocker/wait", 1, nil).Status(); tp.CodeOf(st) != tp.CodeConnClosed {
		t.Fatalf("call on a closed session: %v", st)
	}
	if sess.Health() {
		t.Fatal("a closed session reports healthy")
	}
}

func TestGracefulCloseUnderLoad(t *testing.T) {
	bs := newBlocks()
	srv := newPeer(t, tp.PeerConfig{})
	bs.routes(srv)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	sess := dial(t, cli, addr)

	const n = 1000
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got int
			if err := sess.Call(context.Background(), "/blocker/wait", i, &got).Err(); err != nil || got != i {
				t.Errorf("accepted call %d: %d, %v", i, got, err)
				failed.Add(1)
			}
		}()
	}
	waitFor(t, "all calls to be accepted", func() bool { return bs.entered.Load() == n })
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	// New work is refused while the accepted work finishes. The probe must
	// not block: it may still be accepted before Close begins.
	waitFor(t, "new calls to be refused", func() bool {
		st := sess.Call(context.Background(), "/blocker/echo", -1, nil).Status()
		return tp.CodeOf(st) == tp.CodeShuttingDown
	})
	select {
	case <-closed:
		t.Fatal("Close returned before the accepted calls finished")
	default:
	}
	close(bs.release)
	wg.Wait()
	<-closed
	if failed.Load() > 0 {
		t.Fatalf("%d accepted calls were lost", failed.Load())
	}
}

func TestCloseBoundedByShutdownTimeout(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	srv, _, sess := pair(t, tp.PeerConfig{ShutdownTimeout: 100 * time.Millisecond}, tp.PeerConfig{},
		bs.routes)
	go sess.Call(context.Background(), "/blocker/wait", 1, nil)
	waitFor(t, "the handler to start", func() bool { return bs.entered.Load() == 1 })
	start := time.Now()
	srv.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v with a 100ms shutdown timeout", took)
	}
}

func TestRedialAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv1 := newPeer(t, tp.PeerConfig{})
	srv1.RouteCallFunc(Ping)
	go srv1.Serve(ln)

	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 10 * time.Millisecond})
	sess := dial(t, cli, addr)
	id := sess.ID()
	var got int
	if err := sess.Call(context.Background(), "/ping", 1, &got).Err(); err != nil {
		t.Fatal(err)
	}

	srv1.Close()
	waitFor(t, "the session to notice", func() bool { return !sess.Health() })

	// Calls made during the outage wait for the redial, up to their context.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- sess.Call(ctx, "/ping", 41, &got).Err() }()

	srv2 := newPeer(t, tp.PeerConfig{})
	srv2.RouteCallFunc(Ping)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(ln2)
	if err := <-result; err != nil || got != 42 {
		t.Fatalf("call across the restart: %d, %v", got, err)
	}
	if !sess.Health() || sess.ID() != id || cli.CountSession() != 1 {
		t.Fatalf("after redial: healthy %v, id %q (was %q), %d sessions", sess.Health(), sess.ID(), id, cli.CountSession())
	}
}

func TestRedialGivesUp(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{RedialTimes: 2, RedialInterval: time.Millisecond})
	sess := dial(t, cli, addr)
	srv.Close()
	waitFor(t, "the session to give up", func() bool { return cli.CountSession() == 0 })
	if st := sess.Call(context.Background(), "/ping", 1, nil).Status(); tp.CodeOf(st) != tp.CodeConnClosed {
		t.Fatalf("got %v, want connection closed", st)
	}
}

func TestPoolOverloaded(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	_, _, sess := pair(t, tp.PeerConfig{PoolSize: 1}, tp.PeerConfig{}, bs.routes)
	go sess.Call(context.Background(), "/blocker/wait", 1, nil)
	waitFor(t, "the only worker to be busy", func() bool { return bs.entered.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if st := sess.Call(ctx, "/blocker/wait", 2, nil).Status(); tp.CodeOf(st) != tp.CodeOverloaded {
		t.Fatalf("got %v, want overloaded", st)
	}
}

func TestSessionAge(t *testing.T) {
	_, cli, sess := pair(t, tp.PeerConfig{SessionAge: 50 * time.Millisecond}, tp.PeerConfig{}, nil)
	waitFor(t, "the session to age out", func() bool { return !sess.Health() && cli.CountSession() == 0 })
}

func TestSessionHub(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	a, b := dial(t, cli, addr), dial(t, cli, addr)
	if a.ID() == b.ID() || cli.CountSession() != 2 {
		t.Fatalf("two sessions to one address: ids %q %q, count %d", a.ID(), b.ID(), cli.CountSession())
	}
	if a.ID() != addr {
		t.Fatalf("default ID %q, want the remote address %q", a.ID(), addr)
	}
	a.SetID("alice")
	if got, ok := cli.Session("alice"); !ok || got != a {
		t.Fatal("SetID did not re-key the hub")
	}
	if _, ok := cli.Session(addr); ok {
		t.Fatal("the old ID still finds the session")
	}
	b.SetID("alice") // replaces a
	waitFor(t, "the older session to close", func() bool { return !a.Health() })
	if got, _ := cli.Session("alice"); got != b || cli.CountSession() != 1 {
		t.Fatalf("after the duplicate: count %d", cli.CountSession())
	}
	n := 0
	for range cli.Sessions() {
		n++
	}
	if n != 1 {
		t.Fatalf("Sessions yielded %d sessions", n)
	}
}
