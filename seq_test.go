package tp

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"testing"
	"time"
)

// Seqs wrap after 2^32 calls. A new call never takes the seq of a call
// still waiting, no waiting call is lost, and all of them end with the
// session's close. (The counter is set near the wrap rather than counted
// up to it.)
func TestSeqWrap(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := NewPeer(PeerConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	HandleCall(srv.Router(), "/hold", func(ctx CallCtx, arg *int) (int, error) {
		if *arg < 0 {
			<-release
		}
		return *arg, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	cli, err := NewPeer(PeerConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	sess.seq.Store(math.MaxUint32 - 2)
	held := []*CallCmd{ // seqs MaxUint32-1, MaxUint32, 0 and 1: across the wrap
		sess.AsyncCall(context.Background(), "/hold", -1, new(int), nil),
		sess.AsyncCall(context.Background(), "/hold", -2, new(int), nil),
		sess.AsyncCall(context.Background(), "/hold", -3, new(int), nil),
		sess.AsyncCall(context.Background(), "/hold", -4, new(int), nil),
	}
	if held[2].Seq() != 0 || held[3].Seq() != 1 {
		t.Fatalf("seqs after the wrap: %d, %d", held[2].Seq(), held[3].Seq())
	}
	// The counter comes round again while they wait: new calls skip
	// their seqs, and each gets its own answer.
	sess.seq.Store(math.MaxUint32 - 2)
	for i := range 6 {
		var got int
		c := sess.Call(context.Background(), "/hold", i, &got)
		if err := c.Err(); err != nil || got != i {
			t.Fatalf("call %d: %d, %v", i, got, err)
		}
		for _, h := range held {
			if c.Seq() == h.Seq() {
				t.Fatalf("call %d took seq %d, which a waiting call holds", i, c.Seq())
			}
		}
	}
	for _, h := range held {
		select {
		case <-h.Done():
			t.Fatalf("a held call (seq %d) ended before its reply: %v", h.Seq(), h.Err())
		default:
		}
	}
	sess.Close()
	for _, h := range held {
		select {
		case <-h.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("the call with seq %d still waits after the close", h.Seq())
		}
		if CodeOf(h.Err()) != CodeConnClosed {
			t.Fatalf("seq %d after the close: %v", h.Seq(), h.Err())
		}
	}
}
