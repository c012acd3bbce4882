package tp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
)

// hostileServer serves Math with tight limits, and keeps a well-behaved
// client calling it until the test ends, failing the test if any of its
// calls fails.
func hostileServer(t *testing.T) (*tp.Peer, string) {
	cfg := tp.PeerConfig{}
	cfg.Socket.ReadLimit = 1 << 20
	cfg.Socket.FrameTimeout = 300 * time.Millisecond
	cfg.Socket.IdleTimeout = 400 * time.Millisecond
	srv := newPeer(t, cfg)
	routeMath(srv)
	addr := serve(t, srv)

	good := dial(t, newPeer(t, tp.PeerConfig{}), addr)
	var calls atomic.Int64
	stop := callers(1, func() bool {
		var sum int
		if err := good.Call(context.Background(), "/math/add", []int{1, 2}, &sum).Err(); err != nil || sum != 3 {
			t.Errorf("the well-behaved client failed: %d, %v", sum, err)
			return false
		}
		calls.Add(1)
		return true
	})
	t.Cleanup(func() {
		stop()
		if calls.Load() == 0 {
			t.Error("the well-behaved client made no call")
		}
	})
	return srv, addr
}

func packed(t *testing.T, m *socket.Message) []byte {
	b, err := socket.Pack(rawproto.New()(), nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func callMsg(method string, codecID byte, body []byte) *socket.Message {
	return &socket.Message{Type: socket.TypeCall, Seq: 7, ServiceMethod: method, BodyCodec: codecID, Payload: body}
}

// expectClosed reads from c until the server closes it, within 5 seconds,
// and returns how many bytes came first.
func expectClosed(t *testing.T, c net.Conn) int64 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
	return n
}

// expectReply reads one reply from c and checks its status code.
func expectReply(t *testing.T, c net.Conn, want tp.Code) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, _ := socket.New(c, rawproto.New(), socket.Config{})
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	for m.Type != socket.TypeReply { // skip the server's hello
		m.Reset()
		if err := s.ReadMessage(m); err != nil {
			t.Fatalf("no reply: %v", err)
		}
	}
	if m.Type != socket.TypeReply || m.Seq != 7 || m.Status.Code() != want {
		t.Fatalf("got %s seq %d status %v, want a reply with %v", m.Type, m.Seq, m.Status, want)
	}
}

func TestHostileInput(t *testing.T) {
	_, addr := hostileServer(t)
	good := packed(t, callMsg("/math/add", codec.JSONID, []byte("[1,2,3]")))
	badType := append([]byte(nil), good...)
	badType[6] = 42 // after size(4), version, npipe: the type byte
	garbage := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(garbage)

	tests := []struct {
		name  string
		send  []byte
		drip  bool
		reply tp.Code // 0: the server must close the connection
	}{
		{"random garbage", garbage, false, 0},
		{"4 GiB length", binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF), false, 0},
		{"just over the read limit", binary.BigEndian.AppendUint32(nil, 1<<20+1), false, 0},
		{"unknown message type", badType, false, 0},
		// size 4: version 1, one filter, id 'Q', one byte of "filtered" data
		{"unknown filter", []byte{0, 0, 0, 4, rawproto.Version, 1, 'Q', 0}, false, 0},
		{"unknown body codec", packed(t, callMsg("/math/add", 'Z', []byte("x"))), false, tp.CodeUnsupported},
		{"body of the wrong type", packed(t, callMsg("/math/add", codec.JSONID, []byte(`"a string"`))), false, tp.CodeBadMessage},
		{"malformed body", packed(t, callMsg("/math/add", codec.JSONID, []byte(`[1,`))), false, tp.CodeBadMessage},
		{"unknown method", packed(t, callMsg("/math/nope", codec.JSONID, []byte("[]"))), false, tp.CodeNotFound},
		{"frame dripped a byte per 100ms", good, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.drip {
				go func() {
					for _, b := range tt.send {
						if _, err := c.Write([]byte{b}); err != nil {
							return // closed by the server, as it should
						}
						time.Sleep(100 * time.Millisecond) // the drip itself
					}
				}()
			} else if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.reply != 0 {
				expectReply(t, c, tt.reply)
				return
			}
			start := time.Now()
			got := expectClosed(t, c)
			if tt.drip {
				// Cut off by the frame timeout, long before the frame was whole.
				hm := &socket.Message{Type: socket.TypePush}
				hm.Meta.Set("tp-features", "streams,cancel")
				hello := int64(len(packed(t, hm)))
				if whole := time.Duration(len(tt.send)) * 100 * time.Millisecond; got > hello || time.Since(start) > whole/2 {
					t.Fatalf("the server answered %d bytes after %v; the drip takes %v", got, time.Since(start), whole)
				}
			}
		})
	}
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	_, addr := hostileServer(t)
	frame := packed(t, callMsg("/math/add", codec.JSONID, []byte("[1,2,3]")))
	for k := 1; k < len(frame); k++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(frame[:k])
		c.(*net.TCPConn).CloseWrite()
		expectClosed(t, c)
		c.Close()
	}
}

// Silent connections cost bounded memory and are closed by the idle
// timeout, while the server keeps serving.
func TestSilentConnections(t *testing.T) {
	srv, addr := hostileServer(t)
	const n = 300
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	waitFor(t, "the server to accept them all", func() bool { return srv.CountSession() == n+1 })
	during := heap()
	perConn := (int64(during) - int64(before)) / n
	t.Logf("heap: %d KiB before, %d KiB with %d silent connections: %d bytes each (both ends, in one process)",
		before>>10, during>>10, n, perConn)
	if perConn > 128<<10 {
		t.Errorf("each silent connection costs %d bytes of heap", perConn)
	}
	for _, c := range conns {
		expectClosed(t, c)
	}
}

// A connection that never speaks is dropped by the handshake timeout,
// while a tp peer that stays quiet keeps its session: it said hello.
func TestHandshakeTimeout(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{HandshakeTimeout: 100 * time.Millisecond})
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	quiet := dial(t, newPeer(t, tp.PeerConfig{}), addr)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	expectClosed(t, c)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a silent connection lived %v with a 100ms handshake timeout", took)
	}
	if !quiet.Health() {
		t.Fatal("a quiet tp session was dropped")
	}
	if err := quiet.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatalf("the quiet session after the timeout: %v", err)
	}
}
