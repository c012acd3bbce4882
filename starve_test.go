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
		if running, _ := srv.PoolUsage(); running > 50+1 {
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
