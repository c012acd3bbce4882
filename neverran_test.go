package tp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
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
