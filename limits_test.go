package tp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-a9a850dd/tp"
)

func TestMaxSessions(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{MaxSessions: 2})
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	a, b := dial(t, cli, addr), dial(t, cli, addr)
	waitFor(t, "two sessions", func() bool { return srv.CountSession() == 2 })
	third := dial(t, cli, addr) // TCP accepts it; the server refuses it with a notice
	st := third.Call(context.Background(), "/ping", 1, nil).Status()
	if st.Code() != tp.CodeOverloaded || !strings.Contains(st.Msg(), "2 sessions") {
		t.Fatalf("third session: %v, want overloaded naming the limit", st)
	}
	// Later calls on it say the same, and the first two still work.
	if st := third.Call(context.Background(), "/ping", 1, nil).Status(); st.Code() != tp.CodeOverloaded {
		t.Fatalf("a later call on the refused session: %v", st)
	}
	for _, s := range []*tp.Session{a, b} { // the first two still work
		if err := s.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// A dialing peer at its own limit refuses at Dial, whatever the server.
func TestMaxSessionsDialing(t *testing.T) {
	addr := serve(t, newPeer(t, tp.PeerConfig{}))
	small := newPeer(t, tp.PeerConfig{MaxSessions: 1})
	dial(t, small, addr)
	if _, st := small.Dial(addr); st.Code() != tp.CodeOverloaded {
		t.Fatalf("dial past the dialer's own limit: %v, want overloaded", st)
	}
}

func TestMaxPendingCalls(t *testing.T) {
	bs := newBlocks()
	defer close(bs.release)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{MaxPendingCalls: 3}, bs.routes)
	for i := 0; i < 3; i++ {
		go sess.Call(context.Background(), "/blocker/wait", i, nil)
	}
	waitFor(t, "three calls in the handler", func() bool { return bs.entered.Load() == 3 })
	if st := sess.Call(context.Background(), "/blocker/echo", 4, nil).Status(); st.Code() != tp.CodeOverloaded {
		t.Fatalf("a fourth call: %v, want overloaded", st)
	}
}

func TestMessageTooLarge(t *testing.T) {
	small := tp.PeerConfig{}
	small.Socket.WriteLimit = 1024
	_, _, sess := pair(t, tp.PeerConfig{}, small, func(srv *tp.Peer) { srv.RouteCallFunc(Bytes) })
	var out []byte
	if st := sess.Call(context.Background(), "/bytes", make([]byte, 2000), &out).Status(); st.Code() != tp.CodeTooLarge {
		t.Fatalf("an oversized call: %v, want too large", st)
	}
	// The server refuses what exceeds its read limit, and says so by
	// closing the connection.
	limited := tp.PeerConfig{}
	limited.Socket.ReadLimit = 1024
	_, _, sess = pair(t, limited, tp.PeerConfig{}, func(srv *tp.Peer) { srv.RouteCallFunc(Bytes) })
	if st := sess.Call(context.Background(), "/bytes", make([]byte, 2000), &out).Status(); st.Code() != tp.CodeConnClosed {
		t.Fatalf("a call past the server's read limit: %v, want connection closed", st)
	}
}
