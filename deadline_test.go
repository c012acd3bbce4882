package tp_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/socket"
)

func Sink(ctx tp.CallCtx, arg *[]byte) (int, error) { return len(*arg), nil }

// waitGroup waits for wg, failing the test (rather than hanging it) after d.
func waitGroup(t *testing.T, wg *sync.WaitGroup, d time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v", what, d)
	}
}

// Calls over a network that stopped forwarding (no reset) end by their
// deadline, though their frames cannot all be written, and the session
// then closes within its timeout.
func TestCallsOnDeadNetworkEndByDeadline(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Sink)
	relay := tptest.NewRelay(t, serve(t, srv))
	cli := newPeer(t, tp.PeerConfig{ShutdownTimeout: time.Second})
	sess := dial(t, cli, relay.Addr)
	if err := sess.Call(context.Background(), "/sink", []byte("hi"), nil).Err(); err != nil {
		t.Fatal(err)
	}
	relay.Freeze()

	const n, deadline = 64, 200 * time.Millisecond
	body := bytes.Repeat([]byte("x"), 1<<20)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := sess.Call(ctx, "/sink", body, nil, tp.WithBodyCodec(codec.PlainID)).Err()
			took := time.Since(start)
			if err == nil {
				t.Error("a call over a dead network succeeded")
			}
			mu.Lock()
			slowest = max(slowest, took)
			mu.Unlock()
		}()
	}
	waitGroup(t, &wg, 10*time.Second, "calls over a dead network")
	t.Logf("the slowest of %d calls took %v", n, slowest)
	if slowest > deadline+time.Second {
		t.Fatalf("the slowest of %d calls with a %v deadline took %v", n, deadline, slowest)
	}
	start := time.Now()
	cli.Close()
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Fatalf("Close with frames stuck on a dead network took %v (shutdown timeout 1s)", took)
	}
}

// A server pushing to a client behind a dead network still closes within
// its shutdown timeout, and its pushers return.
func TestCloseWithPushesStuckOnDeadNetwork(t *testing.T) {
	accepted := make(chan *tp.Session, 1)
	srv := newPeer(t, tp.PeerConfig{ShutdownTimeout: time.Second}, acceptHook(func(s *tp.Session) error {
		accepted <- s
		return nil
	}))
	relay := tptest.NewRelay(t, serve(t, srv))
	cli := newPeer(t, tp.PeerConfig{})
	var got atomic.Int64
	tp.HandlePush(cli.Router(), "/news", func(_ tp.PushCtx, b *[]byte) error {
		got.Add(1)
		return nil
	})
	dial(t, cli, relay.Addr)
	s := <-accepted
	body := bytes.Repeat([]byte("n"), 1<<20)
	if err := s.Push(context.Background(), "/news", body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first push", func() bool { return got.Load() == 1 })
	relay.Freeze()
	// Push until the connection's queue is full: a push then waits for
	// room, and gives up with its context.
	for full := false; !full; {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		full = tp.CodeOf(s.Push(ctx, "/news", body)) == tp.CodeTimeout
		cancel()
	}
	pushers := make(chan error, 4)
	for range cap(pushers) {
		go func() { pushers <- s.Push(context.Background(), "/news", body) }()
	}
	start := time.Now()
	srv.Close()
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Fatalf("Close took %v with pushes stuck on a dead network (shutdown timeout 1s)", took)
	}
	for range cap(pushers) {
		select {
		case err := <-pushers:
			if err == nil {
				t.Log("a push found room before the close") // allowed: it was queued, then dropped
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a pusher still waits after Close")
		}
	}
}

// Two peers flooding each other with calls neither serves do not wedge
// each other's read loops: every call ends, and a call afterwards works.
func TestMutualFlood(t *testing.T) {
	// Small kernel buffers, so the flood fills them at once.
	small := socket.Config{SendBuffer: 32 << 10, RecvBuffer: 32 << 10}
	accepted := make(chan *tp.Session, 1)
	srv := newPeer(t, tp.PeerConfig{Socket: small}, acceptHook(func(s *tp.Session) error { accepted <- s; return nil }))
	srv.RouteCallFunc(Ping)
	cli := newPeer(t, tp.PeerConfig{Socket: small})
	cli.RouteCallFunc(Ping)
	sess := dial(t, cli, serve(t, srv))
	back := <-accepted // the server's end, to flood from

	body := bytes.Repeat([]byte("f"), 1<<20)
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	var calls, notFound atomic.Int64
	for _, s := range []*tp.Session{sess, back} {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50 && time.Now().Before(stop); i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					start := time.Now()
					err := s.Call(ctx, "/nowhere", body, nil).Err()
					cancel()
					if took := time.Since(start); took > 3*time.Second {
						t.Errorf("a flooding call took %v with a 2s deadline", took)
						return
					}
					calls.Add(1)
					if tp.CodeOf(err) == tp.CodeNotFound {
						notFound.Add(1)
					}
				}
			}()
		}
	}
	waitGroup(t, &wg, 20*time.Second, "the flood")
	if notFound.Load() == 0 {
		t.Fatalf("none of %d flooding calls was answered", calls.Load())
	}
	for _, s := range []*tp.Session{sess, back} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var n int
		err := s.Call(ctx, "/ping", 1, &n).Err()
		cancel()
		if err != nil || n != 2 {
			t.Fatalf("a call after the flood: %d, %v", n, err)
		}
	}
}

// A handler that returns CodeShuttingDown itself is answered once: only
// the peer's shutdown notice makes a caller resend.
func TestShuttingDownStatusFromHandler(t *testing.T) {
	var runs atomic.Int64
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/busy", func(tp.CallCtx, *int) (int, error) {
		runs.Add(1)
		return 0, tp.NewStatus(tp.CodeShuttingDown, "the shop is closing (says the application)", nil)
	})
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: time.Millisecond})
	sess := dial(t, cli, serve(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := sess.Call(ctx, "/busy", 1, nil).Err()
	if tp.CodeOf(err) != tp.CodeShuttingDown {
		t.Fatalf("got %v, want the handler's status", err)
	}
	if n := runs.Load(); n > 2 {
		t.Fatalf("one Call ran the handler %d times", n)
	}
}
