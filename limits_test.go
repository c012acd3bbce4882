package tp_test

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
)

func TestMaxSessions(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{MaxSessions: 2})
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	a, b := dial(t, cli, addr), dial(t, cli, addr)
	waitFor(t, "two sessions", func() bool { return srv.CountSession() == 2 })
	// TCP accepts the third; the server refuses it with a notice, which
	// Dial reports.
	_, err := cli.Dial(context.Background(), addr)
	if tp.CodeOf(err) != tp.CodeOverloaded || !strings.Contains(err.Error(), "2 sessions") {
		t.Fatalf("third session: %v, want overloaded naming the limit", err)
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
	if _, st := small.Dial(context.Background(), addr); tp.CodeOf(st) != tp.CodeOverloaded {
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
	if st := sess.Call(context.Background(), "/blocker/echo", 4, nil).Status(); tp.CodeOf(st) != tp.CodeOverloaded {
		t.Fatalf("a fourth call: %v, want overloaded", st)
	}
}

func TestMessageTooLarge(t *testing.T) {
	small := tp.PeerConfig{}
	small.Socket.WriteLimit = 1024
	_, _, sess := pair(t, tp.PeerConfig{}, small, func(srv *tp.Peer) { srv.RouteCallFunc(Bytes) })
	var out []byte
	if st := sess.Call(context.Background(), "/bytes", make([]byte, 2000), &out).Status(); tp.CodeOf(st) != tp.CodeTooLarge {
		t.Fatalf("an oversized call: %v, want too large", st)
	}
	// The server refuses what exceeds its read limit, and says so by
	// closing the connection.
	limited := tp.PeerConfig{}
	limited.Socket.ReadLimit = 1024
	_, _, sess = pair(t, limited, tp.PeerConfig{}, func(srv *tp.Peer) { srv.RouteCallFunc(Bytes) })
	if st := sess.Call(context.Background(), "/bytes", make([]byte, 2000), &out).Status(); tp.CodeOf(st) != tp.CodeConnClosed {
		t.Fatalf("a call past the server's read limit: %v, want connection closed", st)
	}
}

// A length prefix is a claim: connections that announce frames just under
// the read limit and then send little make the server allocate for what
// arrived, not for what was announced.
func TestLyingLengthPrefix(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	addr := serve(t, srv)
	const conns = 16
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		head := binary.BigEndian.AppendUint32(nil, socket.DefaultReadLimit-1)
		head = append(head, rawproto.Version, 0)
		if _, err := c.Write(append(head, make([]byte, 1000)...)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the server to hold every connection", func() bool { return srv.CountSession() == conns })
	// Allocation shows at once when a frame's head is read; watch for a
	// while that the server's reads of the heads never add up.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		var now runtime.MemStats
		runtime.ReadMemStats(&now)
		if grew := now.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Fatalf("%d connections that sent 1006 bytes each made the process allocate %d MiB", conns, grew>>20)
		}
	}
}

// A bad config is an error from NewPeer naming every bad field, and a peer
// however made closes cleanly, served or not, more than once.
func TestBadConfig(t *testing.T) {
	p, err := tp.NewPeer(tp.PeerConfig{Network: "udp", BodyCodec: 'Z', PoolSize: -1, Logger: quiet})
	if p != nil || tp.CodeOf(err) != tp.CodeInvalidArgument {
		t.Fatalf("NewPeer with a bad config: %v, %v; want no peer and invalid argument", p, err)
	}
	for _, field := range []string{"Network", "BodyCodec", "PoolSize"} {
		if !strings.Contains(err.Error(), field) {
			t.Fatalf("%q does not name %s", err.Error(), field)
		}
	}
	for _, cfg := range []tp.PeerConfig{{}, {Logger: quiet, ShutdownTimeout: -1}, {Logger: quiet, Network: "unix"}} {
		p, err := tp.NewPeer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	}
}
