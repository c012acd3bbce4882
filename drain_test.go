package tp_test

import (
	"context"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Slow answers after arg milliseconds: a handler that takes a while, longer
// than the grace a closing peer gives the other end to answer its notice.
func Slow(ctx tp.CallCtx, arg *int) (int, error) {
	time.Sleep(time.Duration(*arg) * time.Millisecond)
	return *arg, nil
}

// A peer that closes gracefully waits for the calls it made, not only those
// it serves: a call in flight to the other end gets its reply, whether
// that end stays on the connection or moves to a new one.
func TestGracefulCloseWaitsForOwnCalls(t *testing.T) {
	for _, tt := range []struct {
		name   string
		redial int
	}{{"client stays", 0}, {"client moves", -1}} {
		t.Run(tt.name, func(t *testing.T) {
			accepted := make(chan *tp.Session, 1)
			srv := newPeer(t, tp.PeerConfig{ShutdownTimeout: 5 * time.Second}, acceptHook(func(s *tp.Session) error {
				accepted <- s
				return nil
			}))
			addr := serve(t, srv)
			cli := newPeer(t, tp.PeerConfig{RedialTimes: tt.redial, RedialInterval: 10 * time.Millisecond})
			cli.RouteCallFunc(Slow)
			dial(t, cli, addr)
			back := <-accepted
			var got int
			c := back.AsyncCall(context.Background(), "/slow", 300, &got, nil)
			waitFor(t, "the client's handler to start", func() bool { running, _ := cli.PoolUsage(); return running == 1 })
			start := time.Now()
			if err := srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("Close took %v", took)
			}
			waitDone(t, c, "the server's call")
			if err := c.Err(); err != nil || got != 300 {
				t.Fatalf("the call in flight when Close began: %d, %v", got, err)
			}
		})
	}
}

// Graceful Close waits for the handlers it has accepted, and the caller
// gets the reply.
func TestGracefulCloseWaitsForHandlers(t *testing.T) {
	h := newHolds()
	srv, _, sess := pair(t, tp.PeerConfig{ShutdownTimeout: 10 * time.Second}, tp.PeerConfig{}, h.route)
	t.Cleanup(h.releaseAll)
	var got int
	c := sess.AsyncCall(context.Background(), "/hold", 7, &got, nil)
	<-h.entered
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	// Longer than the grace Close gives a peer to answer its notice: a
	// Close that did not wait for the handler would have cut the session.
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler ran", err)
	case <-time.After(600 * time.Millisecond):
	}
	h.release(7)
	waitDone(t, c, "the held call")
	if err := c.Err(); err != nil || got != 70 {
		t.Fatalf("the call a closing peer had accepted: %d, %v", got, err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return once the handler had")
	}
}

// Close reports what its deadline cut short, and still returns by it.
func TestCloseReportsTimeout(t *testing.T) {
	h := newHolds()
	srv, _, sess := pair(t, tp.PeerConfig{ShutdownTimeout: 300 * time.Millisecond}, tp.PeerConfig{}, h.route)
	t.Cleanup(h.releaseAll)
	sess.AsyncCall(context.Background(), "/hold", 1, nil, nil)
	<-h.entered
	start := time.Now()
	err := srv.Close()
	if took := time.Since(start); took > 300*time.Millisecond+1500*time.Millisecond {
		t.Fatalf("Close took %v with a 300ms shutdown timeout", took)
	}
	if err == nil {
		t.Fatal("Close cut a handler short and reported nothing")
	}
	if again := srv.Close(); again != err {
		t.Fatalf("a second Close: %v, want the first one's error", again)
	}
	h.release(1)
}
