package tp_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
)

func Fail(tp.CallCtx, *int) (int, error) { return 0, errors.New("no") }

// NeverRan is what a caller with other peers to try relies on: true only
// where the call provably did not run.
func TestNeverRan(t *testing.T) {
	route := func(h *holds) func(srv *tp.Peer) {
		return func(srv *tp.Peer) {
			h.route(srv)
			srv.RouteCallFunc(Ping)
			srv.RouteCallFunc(Fail)
		}
	}
	t.Run("succeeded", func(t *testing.T) {
		_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, route(newHolds()))
		if c := sess.Call(context.Background(), "/ping", 1, new(int)); c.Err() != nil || c.NeverRan() {
			t.Fatalf("%v, NeverRan %v", c.Err(), c.NeverRan())
		}
	})
	t.Run("the handler failed", func(t *testing.T) {
		_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, route(newHolds()))
		if c := sess.Call(context.Background(), "/fail", 1, new(int)); c.Err() == nil || c.NeverRan() {
			t.Fatalf("%v, NeverRan %v", c.Err(), c.NeverRan())
		}
	})
	t.Run("the session was closed", func(t *testing.T) {
		_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, route(newHolds()))
		sess.Close()
		if c := sess.Call(context.Background(), "/ping", 1, new(int)); c.Err() == nil || !c.NeverRan() {
			t.Fatalf("%v, NeverRan %v", c.Err(), c.NeverRan())
		}
	})
	t.Run("the connection broke while it waited", func(t *testing.T) {
		h := newHolds()
		accepted := make(chan *tp.Session, 1)
		srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error { accepted <- s; return nil }))
		route(h)(srv)
		addr := serve(t, srv)
		t.Cleanup(h.releaseAll) // after serve's: it runs first
		sess := dial(t, newPeer(t, tp.PeerConfig{}), addr)
		back := <-accepted
		c := sess.AsyncCall(context.Background(), "/hold", 1, new(int), nil)
		<-h.entered
		back.Close()
		waitDone(t, c, "the held call")
		if c.Err() == nil || c.NeverRan() {
			t.Fatalf("%v, NeverRan %v: the handler was running", c.Err(), c.NeverRan())
		}
	})
	t.Run("refused by a closing peer", func(t *testing.T) {
		h := newHolds()
		srv, _, sess := pair(t, tp.PeerConfig{ShutdownTimeout: 10 * time.Second}, tp.PeerConfig{}, route(h))
		t.Cleanup(h.releaseAll)
		held := sess.AsyncCall(context.Background(), "/hold", 1, new(int), nil)
		<-h.entered
		closed := make(chan error, 1)
		go func() { closed <- srv.Close() }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := sess.Call(context.Background(), "/ping", 1, new(int))
			if tp.CodeOf(c.Err()) == tp.CodeShuttingDown {
				if !c.NeverRan() {
					t.Fatalf("%v, NeverRan false", c.Err())
				}
				break
			}
			if c.Err() != nil || time.Now().After(deadline) {
				t.Fatalf("a call to a closing peer: %v", c.Err())
			}
			time.Sleep(time.Millisecond)
		}
		h.release(1)
		waitDone(t, held, "the held call")
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
	})
}

// A peer that closes under load loses no call of a session that cannot
// redial: the session stops sending once it hears the notice and leaves
// when its calls are done, so every call either runs or fails provably
// unrun (a caller with other peers sends those elsewhere). Before, the
// session stayed and kept sending, and calls that crossed the closing
// connection failed as if they might have run.
func TestCloseUnderLoadLosesNoCall(t *testing.T) {
	for range 5 {
		srv, _, sess := pair(t, tp.PeerConfig{ShutdownTimeout: 5 * time.Second}, tp.PeerConfig{}, func(srv *tp.Peer) { srv.RouteCallFunc(Slow) })
		var lost atomic.Int64
		var first atomic.Value
		stop := callers(20, func() bool {
			c := sess.Call(context.Background(), "/slow", 1, new(int))
			if c.Err() != nil && !c.NeverRan() {
				lost.Add(1)
				first.CompareAndSwap(nil, c.Err())
			}
			return c.Err() == nil
		})
		time.Sleep(20 * time.Millisecond)
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		stop()
		if n := lost.Load(); n > 0 {
			t.Fatalf("%d calls failed as if they might have run, the first: %v", n, first.Load())
		}
		tptest.WaitFor(t, "the session to leave", func() bool { return !sess.Health() })
		select {
		case <-sess.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the session did not close after its peer did")
		}
	}
}

// A handler that returns its context's error says why it stopped: the
// caller gets CodeTimeout or CodeCanceled, not an internal error.
func TestHandlerReturnsContextError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want tp.Code
	}{
		{context.DeadlineExceeded, tp.CodeTimeout},
		{fmt.Errorf("waiting: %w", context.Canceled), tp.CodeCanceled},
		{errors.New("broke"), tp.CodeInternal},
	} {
		_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
			tp.HandleCall(srv.Router(), "/stop", func(tp.CallCtx, *int) (int, error) { return 0, tt.err })
		})
		if got := tp.CodeOf(sess.Call(context.Background(), "/stop", 1, new(int)).Err()); got != tt.want {
			t.Errorf("a handler returning %v: code %v, want %v", tt.err, got, tt.want)
		}
	}
}
