package tp_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
)

// What user code may call from where: hooks and handlers that close their
// session or their peer, and settings whose clocks must start when the
// message arrived.
func TestCloseFromHooksAndHandlers(t *testing.T) {
	t.Run("a PostAccept hook closes its session", func(t *testing.T) {
		log := newLifeLog()
		log.onAccept = func(s *tp.Session) error {
			s.Close()
			return nil
		}
		srv := newPeer(t, tp.PeerConfig{}, log)
		addr := serve(t, srv)
		cli := newPeer(t, tp.PeerConfig{})
		if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeDialFailed {
			t.Fatalf("dialing a session its hook closed: %v", err)
		}
		log.check(t, 1)
		if srv.CountSession() != 0 {
			t.Fatalf("a session its hook closed is in the hub")
		}
	})
	t.Run("a handler closes its session", func(t *testing.T) {
		srv := newPeer(t, tp.PeerConfig{})
		tp.HandleCall(srv.Router(), "/bye", func(ctx tp.CallCtx, _ *int) (int, error) {
			ctx.Session().Close()
			return 1, nil
		})
		addr := serve(t, srv)
		sess := dial(t, newPeer(t, tp.PeerConfig{}), addr)
		if err := sess.Call(context.Background(), "/bye", 1, nil).Err(); err != nil && tp.CodeOf(err) != tp.CodeConnClosed {
			t.Fatalf("a call whose handler closed the session: %v", err)
		}
		select {
		case <-sess.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the session its handler closed is still open on the other end")
		}
	})
	t.Run("a handler closes its peer", func(t *testing.T) {
		srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet, ShutdownTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan time.Duration, 1)
		tp.HandleCall(srv.Router(), "/stop", func(ctx tp.CallCtx, _ *int) (int, error) {
			start := time.Now()
			srv.Close()
			closed <- time.Since(start)
			return 1, nil
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		sess := dial(t, newPeer(t, tp.PeerConfig{}), ln.Addr().String())
		sess.AsyncCall(context.Background(), "/stop", 1, nil, nil)
		select {
		case took := <-closed:
			if took > 2*time.Second {
				t.Fatalf("Close from a handler took %v (shutdown timeout 300ms)", took)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close from a handler never returned")
		}
	})
	t.Run("a PostAccept hook closes its peer", func(t *testing.T) {
		var srv *tp.Peer
		closed := make(chan time.Duration, 1)
		srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet, ShutdownTimeout: 300 * time.Millisecond}, acceptHook(func(*tp.Session) error {
			start := time.Now()
			srv.Close()
			closed <- time.Since(start)
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		// The peer closes in its hook, so no hello comes: Dial fails.
		newPeer(t, tp.PeerConfig{}).Dial(context.Background(), ln.Addr().String())
		select {
		case took := <-closed:
			if took > 3*time.Second {
				t.Fatalf("Close from a hook took %v (shutdown timeout 300ms)", took)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close from a hook never returned")
		}
	})
}

// ContextAge counts from when the message arrived, not from when the
// handler first asks for its Context.
func TestContextAgeCountsFromArrival(t *testing.T) {
	const age = 400 * time.Millisecond
	left := make(chan time.Duration, 1)
	srv := newPeer(t, tp.PeerConfig{ContextAge: age})
	tp.HandleCall(srv.Router(), "/late", func(ctx tp.CallCtx, _ *int) (int, error) {
		time.Sleep(age / 2) // work before the handler looks at its context
		d, ok := ctx.Context().Deadline()
		if !ok {
			left <- -1
			return 0, nil
		}
		left <- time.Until(d)
		return 0, nil
	})
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	if err := sess.Call(context.Background(), "/late", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	if l := <-left; l < 0 || l > age*3/4 {
		t.Fatalf("after %v of work, the context had %v left of a %v age", age/2, l, age)
	}
}

// A handshake read a hook starts without a timeout still ends, by the
// peer's HandshakeTimeout, when the other end says nothing at all.
func TestHandshakeReadBoundedByDefault(t *testing.T) {
	got := make(chan error, 1)
	srv := newPeer(t, tp.PeerConfig{HandshakeTimeout: 200 * time.Millisecond}, acceptHook(func(s *tp.Session) error {
		err := s.ReadHandshake(new(socket.Message), 0)
		got <- err
		return err
	}))
	c, err := net.Dial("tcp", serve(t, srv)) // not even a hello
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-got:
		if tp.CodeOf(err) != tp.CodeTimeout {
			t.Fatalf("a handshake read of a silent peer: %v, want timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a handshake read without a timeout never ended")
	}
}

// A peer that says hello where a handshake should come has no matching
// plugin: ReadHandshake says so at once.
func TestHandshakeReadSeesHello(t *testing.T) {
	got := make(chan error, 1)
	srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error {
		err := s.ReadHandshake(new(socket.Message), time.Minute)
		got <- err
		return err
	}))
	addr := serve(t, srv)
	if _, err := newPeer(t, tp.PeerConfig{}).Dial(context.Background(), addr); !errors.Is(err, tp.ErrNoHandshake) {
		t.Fatalf("Dial: %v, want the hook's ErrNoHandshake", err)
	}
	if err := <-got; !errors.Is(err, tp.ErrNoHandshake) {
		t.Fatalf("ReadHandshake: %v, want ErrNoHandshake", err)
	}
}
