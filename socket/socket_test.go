package socket_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/testnet"
	"github.com/seed-a9a850dd/tp/proto/jsonproto"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
	xgzip "github.com/seed-a9a850dd/tp/xfer/gzip"
	xmd5 "github.com/seed-a9a850dd/tp/xfer/md5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tcpPair(t testing.TB) (net.Conn, net.Conn) { return testnet.Pair(t) }

func newSocket(t testing.TB, c net.Conn, cfg socket.Config) *socket.Socket {
	t.Helper()
	s, err := socket.New(c, rawproto.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// gateConn counts Write calls, and holds the first one until open is closed.
type gateConn struct {
	net.Conn
	writes  atomic.Int64
	entered chan struct{} // closed when the first Write starts
	open    chan struct{}
	once    sync.Once
}

func newGateConn(c net.Conn) *gateConn {
	return &gateConn{Conn: c, entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gateConn) Write(p []byte) (int, error) {
	if g.writes.Add(1) == 1 {
		g.once.Do(func() { close(g.entered) })
		<-g.open
	}
	return g.Conn.Write(p)
}

func push(seq uint32, body string) *socket.Message {
	return &socket.Message{Type: socket.TypePush, Seq: seq, ServiceMethod: "/p", BodyCodec: codec.PlainID, Body: body}
}

// readAll reads n messages and returns their seqs and bodies.
func readAll(t *testing.T, s *socket.Socket, n int) map[uint32]string {
	t.Helper()
	got := make(map[uint32]string, n)
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	for i := 0; i < n; i++ {
		m.Reset()
		if err := s.ReadMessage(m); err != nil {
			t.Fatalf("read %d of %d: %v", i, n, err)
		}
		var body string
		if err := m.UnmarshalBody(&body); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[m.Seq]; dup {
			t.Fatalf("seq %d arrived twice", m.Seq)
		}
		got[m.Seq] = body
	}
	return got
}

func TestWritesCoalesce(t *testing.T) {
	a, b := tcpPair(t)
	gate := newGateConn(a)
	w := newSocket(t, gate, socket.Config{})
	r := newSocket(t, b, socket.Config{})

	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // becomes the owner and blocks in the first Write
		defer wg.Done()
		if err := w.WriteMessage(context.Background(), push(0, "first")); err != nil {
			t.Error(err)
		}
	}()
	<-gate.entered
	for i := 1; i < n; i++ { // all queue behind it and return at once
		if err := w.WriteMessage(context.Background(), push(uint32(i), fmt.Sprint("msg", i))); err != nil {
			t.Fatal(err)
		}
	}
	close(gate.open)
	wg.Wait()

	got := readAll(t, r, n)
	for i := 1; i < n; i++ {
		if got[uint32(i)] != fmt.Sprint("msg", i) {
			t.Fatalf("seq %d: body %q", i, got[uint32(i)])
		}
	}
	// One direct write, then the whole backlog in one batch.
	if w := gate.writes.Load(); w != 2 {
		t.Fatalf("%d messages took %d write syscalls, want 2", n, w)
	}
}

func TestConcurrentWritesArriveIntact(t *testing.T) {
	a, b := tcpPair(t)
	w := newSocket(t, a, socket.Config{})
	r := newSocket(t, b, socket.Config{})
	const writers, each = 32, 100
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq := uint32(g*each + i)
				if err := w.WriteMessage(context.Background(), push(seq, fmt.Sprint("body-", seq))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := readAll(t, r, writers*each)
	wg.Wait()
	for seq, body := range got {
		if body != fmt.Sprint("body-", seq) {
			t.Fatalf("seq %d: body %q", seq, body)
		}
	}
}

func TestMaxPendingBlocksWriters(t *testing.T) {
	a, b := tcpPair(t)
	gate := newGateConn(a)
	w := newSocket(t, gate, socket.Config{MaxPending: 1024})
	r := newSocket(t, b, socket.Config{})
	go w.WriteMessage(context.Background(), push(0, "owner"))
	<-gate.entered

	const n = 50
	var returned atomic.Int64
	var wg sync.WaitGroup
	big := string(bytes.Repeat([]byte("x"), 200))
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.WriteMessage(context.Background(), push(uint32(i), big)); err != nil {
				t.Error(err)
			}
			returned.Add(1)
		}()
	}
	// Writers that fit in 1 KiB return; the rest must wait for the gate.
	deadline := time.Now().Add(5 * time.Second)
	for returned.Load() < 4 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if got := returned.Load(); got == 0 || got >= n {
		t.Fatalf("%d of %d writers returned with the connection stalled; want some but not all", got, n)
	}
	close(gate.open)
	readAll(t, r, n+1)
	wg.Wait()
}

func TestCloseFlushesPending(t *testing.T) {
	a, b := tcpPair(t)
	gate := newGateConn(a)
	w, err := socket.New(gate, rawproto.New(), socket.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := newSocket(t, b, socket.Config{})
	go w.WriteMessage(context.Background(), push(0, "owner"))
	<-gate.entered
	const n = 20
	for i := 1; i < n; i++ {
		if err := w.WriteMessage(context.Background(), push(uint32(i), "queued")); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error)
	go func() { closed <- w.Close() }()
	close(gate.open)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	readAll(t, r, n)
	m := socket.AcquireMessage()
	if err := r.ReadMessage(m); status.From(err, 0, "").Code() != status.ConnClosed {
		t.Fatalf("after the last message: %v, want connection closed", err)
	}
	if err := w.WriteMessage(context.Background(), push(99, "late")); status.From(err, 0, "").Code() != status.ConnClosed {
		t.Fatalf("write after Close: %v, want connection closed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// failConn fails every Write with err.
type failConn struct {
	net.Conn
	err error
}

func (f failConn) Write([]byte) (int, error) { return 0, f.err }

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		err  error
		want status.Code
	}{
		{syscall.EPIPE, status.ConnClosed},
		{syscall.ECONNRESET, status.ConnClosed},
		{os.ErrDeadlineExceeded, status.WriteFailed},
	}
	for _, tt := range tests {
		a, _ := net.Pipe()
		w := newSocket(t, failConn{a, tt.err}, socket.Config{})
		for i := 0; i < 2; i++ { // the error sticks
			err := w.WriteMessage(context.Background(), push(1, "x"))
			var st *status.Status
			if !errors.As(err, &st) || st.Code() != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("%v, write %d: %v, want %v caused by it", tt.err, i, err, tt.want)
			}
		}
	}
}

func TestPackErrorIsReported(t *testing.T) {
	a, _ := net.Pipe()
	w := newSocket(t, a, socket.Config{})
	err := w.WriteMessage(context.Background(), &socket.Message{Type: socket.TypeCall, BodyCodec: codec.PlainID, Body: 42})
	var ute *codec.UnsupportedTypeError
	if status.From(err, 0, "").Code() != status.InvalidArgument || !errors.As(err, &ute) {
		t.Fatalf("got %v, want invalid argument caused by an UnsupportedTypeError", err)
	}
	err = w.WriteMessage(context.Background(), &socket.Message{Type: socket.TypeCall, BodyCodec: 'Z', Body: 1})
	if status.From(err, 0, "").Code() != status.Unsupported {
		t.Fatalf("unknown codec: %v, want unsupported", err)
	}
}

// frame builds an envelope by hand.
func frame(size uint32, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, size)
	return append(b, rest...)
}

func goodFrame(t *testing.T, m *socket.Message) []byte {
	b, err := socket.Pack(rawproto.New()(), nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadErrors(t *testing.T) {
	md5Frame := goodFrame(t, &socket.Message{Type: socket.TypePush, XferPipe: []byte{xmd5.ID}, BodyCodec: codec.PlainID, Body: "payload"})
	md5Frame[len(md5Frame)-20] ^= 1 // flip a bit of the body
	badType := goodFrame(t, &socket.Message{Type: socket.TypePush})
	badType[6] = 42
	jsonFrame, _ := socket.Pack(jsonproto.New()(), nil, &socket.Message{Type: socket.TypeCall})
	tests := []struct {
		name  string
		input []byte
		code  status.Code
	}{
		{"empty stream", nil, status.ConnClosed},
		{"cut in the length", []byte{0, 0}, status.ConnClosed},
		{"cut in the body", frame(100, rawproto.Version, 0, 1, 2), status.ConnClosed},
		{"4 GiB claimed", frame(0xFFFFFFFF), status.TooLarge},
		{"just over the limit", frame(1<<20 + 1), status.TooLarge},
		{"shorter than a header", frame(1, rawproto.Version), status.BadMessage},
		{"pipe longer than frame", frame(3, rawproto.Version, 5, 'g'), status.BadMessage},
		{"other proto's frame", jsonFrame, status.Unsupported},
		{"unknown filter", frame(4, rawproto.Version, 1, 'Q', 0), status.Unsupported},
		{"corrupt md5", md5Frame, status.BadMessage},
		{"garbage header", frame(4, rawproto.Version, 0, 1, 0xff), status.BadMessage},
		{"unknown type", badType, status.Unsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			go func() {
				a.Write(tt.input)
				a.Close()
			}()
			r := newSocket(t, b, socket.Config{ReadLimit: 1 << 20})
			m := socket.AcquireMessage()
			defer socket.ReleaseMessage(m)
			err := r.ReadMessage(m)
			var st *status.Status
			if !errors.As(err, &st) || st.Code() != tt.code {
				t.Fatalf("got %v, want code %q", err, tt.code)
			}
		})
	}
}

func TestReadLimitBeforeAllocation(t *testing.T) {
	huge := frame(0xFFFFFFF0, rawproto.Version, 0)
	p := rawproto.New()()
	allocs := testing.AllocsPerRun(20, func() {
		m := socket.Message{}
		if err := socket.Unpack(p, huge, &m, 1<<20); err == nil {
			t.Fatal("a 4 GiB frame was accepted")
		}
	})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	socket.Unpack(p, huge, &socket.Message{}, 1<<20)
	runtime.ReadMemStats(&ms)
	if grew := ms.TotalAlloc - before; grew > 64<<10 || allocs > 10 {
		t.Fatalf("refusing a 4 GiB frame allocated %d bytes in %v allocations", grew, allocs)
	}
}

func TestSetReadLimit(t *testing.T) {
	a, b := tcpPair(t)
	w := newSocket(t, a, socket.Config{})
	r := newSocket(t, b, socket.Config{})
	if r.ReadLimit() != socket.DefaultReadLimit {
		t.Fatalf("default read limit %d, want %d", r.ReadLimit(), socket.DefaultReadLimit)
	}
	r.SetReadLimit(100)
	go w.WriteMessage(context.Background(), push(1, string(make([]byte, 200))))
	err := r.ReadMessage(socket.AcquireMessage())
	if status.From(err, 0, "").Code() != status.TooLarge {
		t.Fatalf("got %v, want too large", err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, b := tcpPair(t)
	r := newSocket(t, b, socket.Config{})
	r.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	err := r.ReadMessage(socket.AcquireMessage())
	if status.From(err, 0, "").Code() != status.Timeout {
		t.Fatalf("got %v, want timeout", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	_, b := tcpPair(t)
	r, _ := socket.New(b, rawproto.New(), socket.Config{})
	errc := make(chan error)
	go func() { errc <- r.ReadMessage(socket.AcquireMessage()) }()
	r.Close()
	if err := <-errc; status.From(err, 0, "").Code() != status.ConnClosed {
		t.Fatalf("got %v, want connection closed", err)
	}
}

func TestAccessors(t *testing.T) {
	a, _ := tcpPair(t)
	s := newSocket(t, a, socket.Config{})
	if s.LocalAddr() == nil || s.RemoteAddr() == nil || s.Conn() != a {
		t.Fatal("addresses or conn missing")
	}
	if _, name := s.Proto().Version(); name != "raw" {
		t.Fatalf("proto %q", name)
	}
}

func TestTCPOptions(t *testing.T) {
	tests := []struct {
		name    string
		cfg     socket.Config
		nodelay int
	}{
		{"default sets TCP_NODELAY", socket.Config{}, 1},
		{"Delay leaves Nagle on", socket.Config{Delay: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := tcpPair(t)
			tt.cfg.SendBuffer, tt.cfg.KeepAlive = 64<<10, time.Minute
			newSocket(t, a, tt.cfg)
			rc, err := a.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got, sndbuf int
			var gerr error
			err = rc.Control(func(fd uintptr) {
				got, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
				if gerr == nil {
					sndbuf, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
				}
			})
			if err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			if (got != 0) != (tt.nodelay != 0) {
				t.Fatalf("TCP_NODELAY = %d, want %d", got, tt.nodelay)
			}
			if sndbuf < 64<<10 { // Linux doubles what it is given
				t.Fatalf("SO_SNDBUF = %d, want at least 64 KiB", sndbuf)
			}
		})
	}
}

func TestMeta(t *testing.T) {
	var m socket.Meta
	m.Add("a", "1")
	m.Add("b", "2")
	m.Add("a", "3")
	if m.Get("a") != "1" || m.Len() != 3 || fmt.Sprint(m.Values("a")) != "[1 3]" {
		t.Fatalf("after Add: %v %d %v", m.Get("a"), m.Len(), m.Values("a"))
	}
	m.Set("a", "4")
	if fmt.Sprint(m.Values("a")) != "[4]" || m.Get("b") != "2" {
		t.Fatalf("after Set: %v", m.Values("a"))
	}
	var order []string
	m.Range(func(k, v string) bool { order = append(order, k+v); return true })
	if fmt.Sprint(order) != "[b2 a4]" {
		t.Fatalf("order %v", order)
	}
	m.Del("b")
	if m.Get("b") != "" || m.Len() != 1 {
		t.Fatal("Del left the key")
	}
	m.Reset()
	if m.Len() != 0 {
		t.Fatal("Reset left pairs")
	}
}

func TestUnmarshalBodyErrors(t *testing.T) {
	m := &socket.Message{BodyCodec: 'Z', Payload: []byte("x")}
	var s string
	if err := m.UnmarshalBody(&s); status.From(err, 0, "").Code() != status.Unsupported {
		t.Fatalf("unknown codec: %v", err)
	}
	m = &socket.Message{BodyCodec: codec.JSONID, Payload: []byte("{")}
	var v map[string]int
	if err := m.UnmarshalBody(&v); status.From(err, 0, "").Code() != status.BadMessage {
		t.Fatalf("bad json: %v", err)
	}
	m = &socket.Message{}
	if err := m.UnmarshalBody(&v); err != nil {
		t.Fatalf("empty body: %v", err)
	}
}

// A small frame whose filters would inflate it far is refused at the
// inflate limit, with memory to match; a peer can also refuse filters it
// does not use.
func TestInflateLimitAndFilters(t *testing.T) {
	bomb, err := socket.Pack(rawproto.New()(), nil, &socket.Message{Type: socket.TypePush, XferPipe: []byte{xgzip.ID}, Payload: make([]byte, 32<<20)})
	if err != nil {
		t.Fatal(err)
	}
	if len(bomb) > 100<<10 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	read := func(cfg socket.Config) (uint64, error) {
		a, b := net.Pipe()
		defer a.Close()
		go a.Write(bomb)
		r := newSocket(t, b, cfg)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		err := r.ReadMessage(socket.AcquireMessage())
		runtime.ReadMemStats(&ms)
		return ms.TotalAlloc - before, err
	}
	grew, err := read(socket.Config{})
	if status.From(err, 0, "").Code() != status.BadMessage {
		t.Fatalf("a %d-byte frame inflating to 32 MiB: %v", len(bomb), err)
	}
	if grew > 3*socket.DefaultInflateLimit {
		t.Fatalf("refusing it allocated %d MiB", grew>>20)
	}
	_, err = read(socket.Config{Filters: []byte{xmd5.ID}})
	if status.From(err, 0, "").Code() != status.Unsupported {
		t.Fatalf("a gzip frame to a socket that takes only md5: %v", err)
	}
}

// countingConn is a TCP connection wrapped by a Read of its own, as a
// user's Dialer may return: the socket must read through it.
type countingConn struct {
	*net.TCPConn
	reads atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.TCPConn.Read(p)
}

func TestWrappedConnReadThroughItsRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, _ := socket.New(c, rawproto.New(), socket.Config{})
		s.WriteMessage(context.Background(), &socket.Message{Type: socket.TypePush, ServiceMethod: "/x"})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{TCPConn: c.(*net.TCPConn)}
	s, _ := socket.New(cc, rawproto.New(), socket.Config{})
	defer s.Close()
	m := new(socket.Message)
	if err := s.ReadMessage(m); err != nil || m.ServiceMethod != "/x" {
		t.Fatalf("%v %v", m.ServiceMethod, err)
	}
	if cc.reads.Load() == 0 {
		t.Fatal("the socket read around the wrapper's Read")
	}
}

// eofConn returns its last bytes together with io.EOF, as io.Reader
// allows (QUIC streams do).
type eofConn struct {
	net.Conn
	data []byte
}

func (c *eofConn) Read(p []byte) (int, error) {
	n := copy(p, c.data)
	c.data = c.data[n:]
	if len(c.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// A frame that arrives with the connection's end is read, then the end.
func TestFrameWithEOF(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	frame, err := socket.Pack(rawproto.New()(), nil, &socket.Message{Type: socket.TypePush, ServiceMethod: "/last"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := socket.New(&eofConn{Conn: a, data: append(frame, frame...)}, rawproto.New(), socket.Config{})
	for i := range 2 {
		m := new(socket.Message)
		if err := s.ReadMessage(m); err != nil || m.ServiceMethod != "/last" {
			t.Fatalf("frame %d: %q, %v", i, m.ServiceMethod, err)
		}
	}
	if err := s.ReadMessage(new(socket.Message)); status.From(err, 0, "").Code() != status.ConnClosed {
		t.Fatalf("after the frames: %v", err)
	}
}
