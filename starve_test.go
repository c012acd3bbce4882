package tp_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
)

// Huge answers with 64 KiB, so a peer that does not read fills its buffers
// fast.
func Huge(ctx tp.CallCtx, _ *int) ([]byte, error) { return bytes.Repeat([]byte("b"), 64<<10), nil }

// A connection that sends calls and never reads their replies cannot take
// the server: its handlers are capped per session, its blocked writes time
// out and its connection is closed, and another client is served all the
// while.
func TestPeerThatNeverReads(t *testing.T) {
	cfg := tp.PeerConfig{PoolSize: 200, MaxSessionHandlers: 50}
	cfg.Socket.WriteTimeout = 300 * time.Millisecond
	srv := newPeer(t, cfg)
	srv.RouteCallFunc(Huge)
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)

	attacker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	frame, err := socket.Pack(rawproto.New()(), nil, &socket.Message{Type: socket.TypeCall, ServiceMethod: "/huge", BodyCodec: codec.JSONID, Payload: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	go func() { // calls as fast as the server takes them; never a read
		defer close(sent)
		attacker.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for i := 0; i < 20000; i++ {
			if _, err := attacker.Write(frame); err != nil {
				return
			}
		}
	}()

	good := dial(t, newPeer(t, tp.PeerConfig{}), addr)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var n int
		err := good.Call(ctx, "/ping", i, &n).Err()
		cancel()
		if err != nil || n != i+1 {
			t.Fatalf("a well-behaved client during the attack, call %d: %d, %v", i, n, err)
		}
		// The attacker's 50, this client's one, and one of the attacker's
		// just finished: it leaves the count of in-flight handlers just
		// after its connection's count, which has admitted the next.
		if running, _ := srv.PoolUsage(); running > 50+1+1 {
			t.Fatalf("%d handlers busy: one connection took more than its share", running)
		}
	}
	// The attacker's connection is closed by the server.
	attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, attacker); err != nil && !isReset(err) {
		t.Fatalf("the attacker's connection was not closed: %v", err)
	}
	<-sent
	waitFor(t, "the attacker's handlers to end", func() bool { running, _ := srv.PoolUsage(); return running == 0 })
	if err := good.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatalf("after the attack: %v", err)
	}
}

// isReset reports an error other than a timeout: the server closed the
// connection (with unread data, a close is a reset).
func isReset(err error) bool {
	ne, ok := err.(net.Error)
	return !ok || !ne.Timeout()
}

// Before a session serves, nobody is authenticated: its frames are held
// small, and only so many connections may be in their handshake at once.
func TestHandshakeLimits(t *testing.T) {
	got := make(chan error, 10)
	entered := make(chan struct{}, 10)
	cfg := tp.PeerConfig{MaxHandshakes: 2, HandshakeReadLimit: 1 << 10}
	srv := newPeer(t, cfg, acceptHook(func(s *tp.Session) error {
		entered <- struct{}{}
		err := s.ReadHandshake(new(socket.Message), 0)
		got <- err
		return err
	}))
	addr := serve(t, srv)

	// A handshake frame past the limit is refused before it is read.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big, _ := socket.Pack(rawproto.New()(), nil, &socket.Message{Type: socket.TypeCall, ServiceMethod: "/auth", Payload: bytes.Repeat([]byte("k"), 4<<10)})
	<-entered
	c.Write(big)
	if err := <-got; tp.CodeOf(err) != tp.CodeTooLarge {
		t.Fatalf("a 4 KiB handshake frame with a 1 KiB limit: %v", err)
	}

	// Two connections that say nothing hold both handshake places; a third
	// is closed at once.
	var held []net.Conn
	for range 2 {
		h, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		held = append(held, h)
	}
	<-entered
	<-entered // both in their hook
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, third); err != nil && !isReset(err) {
		t.Fatalf("a connection past MaxHandshakes was not closed: %v", err)
	}
	for _, h := range held { // the two held are still open
		h.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := h.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("a connection within MaxHandshakes was closed: %v", err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
