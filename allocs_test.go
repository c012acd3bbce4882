package tp_test

import (
	"context"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
)

// What a call allocates, both ends in one process, a []byte body in the
// plain codec through a route registered with HandleCall: the client's
// CallCmd and its done channel, the server's handler context (its
// argument allocated with it), and the codec's copy of the body on the
// server (the client's result reuses its capacity). Anything more is a
// regression.
func TestAllocsPerCall(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	cfg := tp.PeerConfig{BodyCodec: codec.PlainID}
	_, _, sess := pair(t, cfg, cfg, func(srv *tp.Peer) {
		tp.HandleCall(srv.Router(), "/bytes", func(_ tp.CallCtx, b *[]byte) (*[]byte, error) { return b, nil })
	})
	body := make([]byte, 581)
	var arg any = body // boxed once, outside the measurement
	var out []byte
	call := func() {
		if err := sess.Call(context.Background(), "/bytes", arg, &out).Err(); err != nil {
			t.Fatal(err)
		}
	}
	call()
	const want = 4 // client 2, server 1, the codec 1
	if got := testing.AllocsPerRun(2000, call); got > want {
		t.Fatalf("a call allocates %.1f times; want at most %d", got, want)
	}
}
