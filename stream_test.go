package tp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
)

// echoStream sends back every message it receives, then a trailer.
func echoStream(ctx tp.StreamCtx, s *tp.Stream) error {
	n := 0
	for {
		var v string
		err := s.Recv(&v)
		if err == io.EOF {
			s.SetTrailer("count", fmt.Sprint(n))
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if err := s.Send(ctx.PeekMeta("prefix") + v); err != nil {
			return err
		}
	}
}

func TestStreamEcho(t *testing.T) {
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/echo", echoStream)
	})
	_ = srv
	ctx := context.Background()
	s, err := sess.OpenStream(ctx, "/echo", tp.WithSetMeta("prefix", "> "))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if err := s.Send(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		var v string
		if err := s.Recv(&v); err != nil || v != fmt.Sprint("> ", i) {
			t.Fatalf("message %d: %q %v", i, v, err)
		}
	}
	var v string
	if err := s.Recv(&v); err != io.EOF {
		t.Fatalf("after the last: %v", err)
	}
	if got := s.Trailer().Get("count"); got != "100" {
		t.Fatalf("trailer count %q", got)
	}
	if err := s.Send("late"); err != io.EOF {
		t.Fatalf("a send after the end: %v", err)
	}
	select {
	case <-s.Context().Done():
	case <-time.After(time.Second):
		t.Fatal("the stream's context did not end with it")
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

func TestStreamFromTheServer(t *testing.T) {
	srv, cli, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, nil)
	tp.HandleStream(cli.Router(), "/echo", echoStream)
	_ = sess
	var back *tp.Session
	for s := range srv.Sessions() {
		back = s
	}
	s, err := back.OpenStream(context.Background(), "/echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send("hi"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.Recv(&v); err != nil || v != "hi" {
		t.Fatalf("%q %v", v, err)
	}
	s.CloseSend()
	if err := s.Recv(&v); err != io.EOF {
		t.Fatal(err)
	}
}

func TestStreamRefusals(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/fail", func(ctx tp.StreamCtx, s *tp.Stream) error {
			return tp.NewStatus(tp.CodeInvalidArgument, "no thanks", nil)
		})
	})
	for _, tt := range []struct {
		method string
		want   tp.Code
	}{{"/nope", tp.CodeNotFound}, {"/fail", tp.CodeInvalidArgument}} {
		s, err := sess.OpenStream(context.Background(), tt.method)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		err = s.Recv(&v)
		if tp.CodeOf(err) != tt.want {
			t.Fatalf("%s: %v", tt.method, err)
		}
		if err := s.Send("x"); tp.CodeOf(err) != tt.want {
			t.Fatalf("%s: send: %v", tt.method, err)
		}
		if !errors.Is(context.Cause(s.Context()), s.Err()) {
			t.Fatalf("%s: the context's cause %v", tt.method, context.Cause(s.Context()))
		}
	}
}

// transports yields a connected session over each transport tp has, to a
// server set up by route.
func transports(t *testing.T, route func(*tp.Peer)) map[string]func(t *testing.T) (srv *tp.Peer, sess *tp.Session) {
	return map[string]func(t *testing.T) (*tp.Peer, *tp.Session){
		"tcp": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, route)
			return srv, sess
		},
		"tls": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srvTLS, cliTLS := selfSigned(t)
			srv, _, sess := pair(t, tp.PeerConfig{TLS: srvTLS}, tp.PeerConfig{TLS: cliTLS}, route)
			return srv, sess
		},
		"unix": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srv := newPeer(t, tp.PeerConfig{Network: "unix"})
			route(srv)
			ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "tp.sock"))
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			return srv, dial(t, newPeer(t, tp.PeerConfig{Network: "unix"}), ln.Addr().String())
		},
		"pipe": func(t *testing.T) (*tp.Peer, *tp.Session) {
			a, b := net.Pipe()
			srv := newPeer(t, tp.PeerConfig{})
			route(srv)
			if _, err := srv.ServeConn(a); err != nil {
				t.Fatal(err)
			}
			sess, err := newPeer(t, tp.PeerConfig{}).ServeConn(b)
			if err != nil {
				t.Fatal(err)
			}
			return srv, sess
		},
	}
}

// checkEcho runs one stream of n messages through /echo, each naming the
// stream, and checks every one comes back, in order.
func checkEcho(ctx context.Context, sess *tp.Session, name string, n int) error {
	s, err := sess.OpenStream(ctx, "/echo")
	if err != nil {
		return err
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Send(fmt.Sprintf("%s #%d", name, i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- s.CloseSend()
	}()
	for i := range n {
		var v string
		if err := s.Recv(&v); err != nil {
			return fmt.Errorf("%s: message %d: %w", name, i, err)
		}
		if want := fmt.Sprintf("%s #%d", name, i); v != want {
			return fmt.Errorf("%s: got %q, want %q", name, v, want)
		}
	}
	if err := s.Recv(new(string)); err != io.EOF {
		return fmt.Errorf("%s: after the last: %v", name, err)
	}
	return <-errc
}

func TestStreamTransports(t *testing.T) {
	for name, connect := range transports(t, func(srv *tp.Peer) { tp.HandleStream(srv.Router(), "/echo", echoStream) }) {
		t.Run(name, func(t *testing.T) {
			_, sess := connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 10)
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := checkEcho(ctx, sess, fmt.Sprint("stream ", i), 200); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// 1,000 streams each way at once on one session, each with its own data,
// and calls beside them.
func TestThousandStreamsBothWays(t *testing.T) {
	srv, cli, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/echo", echoStream)
		srv.RouteCallFunc(Ping)
	})
	tp.HandleStream(cli.Router(), "/echo", echoStream)
	var back *tp.Session
	for s := range srv.Sessions() {
		back = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 20
	if raceEnabled {
		n = 5
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for i := range 1000 {
		for _, side := range []struct {
			name string
			sess *tp.Session
		}{{"client", sess}, {"server", back}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := checkEcho(ctx, side.sess, fmt.Sprintf("%s stream %d", side.name, i), n); err != nil {
					errs <- err
				}
			}()
		}
	}
	var x int
	if err := sess.Call(ctx, "/ping", 1, &x).Err(); err != nil || x != 2 {
		t.Fatalf("a call beside the streams: %d %v", x, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// sink reads nothing until its stream ends.
func sink(ctx tp.StreamCtx, s *tp.Stream) error {
	<-ctx.Context().Done()
	return nil
}

// callLatency is the median of a few round trips of /ping.
func callLatency(t *testing.T, sess *tp.Session) time.Duration {
	t.Helper()
	var ds []time.Duration
	for range 21 {
		start := time.Now()
		var n int
		if err := sess.Call(context.Background(), "/ping", 1, &n).Err(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// A reader that stops reading stops its own senders and nobody else: a
// call beside them keeps its latency, and memory stays within windows.
func TestSlowReaderStopsOnlyItsStream(t *testing.T) {
	const window = 256 << 10
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/sink", sink)
		srv.RouteCallFunc(Ping)
	})
	before := callLatency(t, sess)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc

	const streams = 50
	msg := make([]byte, 1000)
	var sent [streams]atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range streams {
		s, err := sess.OpenStream(ctx, "/sink")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s.Send(msg) == nil {
				sent[i].Add(int64(len(msg)))
			}
		}()
	}
	// Every sender stops: what it sent fits the window.
	total := func() (n int64) {
		for i := range sent {
			n += sent[i].Load()
		}
		return n
	}
	var last int64 = -1
	waitFor(t, "the senders to stop", func() bool {
		n := total()
		stopped := n == last && n > 0
		last = n
		time.Sleep(50 * time.Millisecond)
		return stopped
	})
	for i := range sent {
		if n := sent[i].Load(); n > window || n < window/2 {
			t.Fatalf("stream %d sent %d bytes to a reader that reads nothing; its window is %d", i, n, window)
		}
	}
	during := callLatency(t, sess)
	if during > before+10*time.Millisecond {
		t.Fatalf("a call beside %d stalled streams took %v; %v before", streams, during, before)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grown, bound := int64(ms.HeapAlloc)-int64(heapBefore), int64(2*streams*window+8<<20); grown > bound {
		t.Fatalf("the heap grew by %d bytes with %d stalled streams; the bound is %d", grown, streams, bound)
	}
	t.Logf("%d stalled streams, %d bytes sent; call latency %v before, %v during; heap +%d KiB",
		streams, total(), before, during, (int64(ms.HeapAlloc)-int64(heapBefore))>>10)
	cancel() // every Send ends by the stream's context
	wg.Wait()
}

// A Send blocked on a reader that reads nothing ends with the stream's
// context.
func TestBlockedSendEndsByContext(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/sink", sink)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s, err := sess.OpenStream(ctx, "/sink")
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 4096)
	var err2 error
	for err2 == nil {
		err2 = s.Send(msg)
	}
	if tp.CodeOf(err2) != tp.CodeTimeout {
		t.Fatalf("a blocked Send past the deadline: %v", err2)
	}
}

// 1 GiB through one stream (128 MiB under the race detector), with the
// heap bounded throughout.
func TestStreamGiB(t *testing.T) {
	total := int64(1 << 30)
	if raceEnabled || testing.Short() {
		total = 128 << 20
	}
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/count", func(ctx tp.StreamCtx, s *tp.Stream) error {
			var n int64
			var b []byte
			for {
				err := s.Recv(&b)
				if err == io.EOF {
					return s.Send(n)
				}
				if err != nil {
					return err
				}
				n += int64(len(b))
			}
		})
	})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	start := time.Now()
	s, err := sess.OpenStream(context.Background(), "/count")
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 64<<10)
	for sent := int64(0); sent < total; sent += int64(len(msg)) {
		if err := s.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := s.Recv(&got); err != nil || got != total {
		t.Fatalf("the handler counted %d bytes of %d: %v", got, total, err)
	}
	close(stop)
	<-sampled
	grown := int64(peak.Load()) - int64(base)
	t.Logf("%d MiB in %v (%.0f MiB/s); peak heap in use %d MiB above the start", total>>20, time.Since(start), float64(total>>20)/time.Since(start).Seconds(), grown>>20)
	if grown > 64<<20 {
		t.Fatalf("the heap grew by %d MiB streaming", grown>>20)
	}
}

// A reset mid-flight ends both sides with its status; so does a handler
// that returns an error.
func TestStreamReset(t *testing.T) {
	handlerSaw := make(chan error, 1)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/recv", func(ctx tp.StreamCtx, s *tp.Stream) error {
			for {
				var b []byte
				if err := s.Recv(&b); err != nil {
					<-ctx.Context().Done()
					handlerSaw <- errors.Join(err, context.Cause(ctx.Context()))
					return nil
				}
			}
		})
		tp.HandleStream(srv.Router(), "/give-up", func(ctx tp.StreamCtx, s *tp.Stream) error {
			for i := range 10 {
				if err := s.Send(i); err != nil {
					return err
				}
			}
			return tp.NewStatus(tp.CodeFailedPrecondition, "out of patience", nil)
		})
	})
	s, err := sess.OpenStream(context.Background(), "/recv")
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := s.Send(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	s.Reset(tp.NewStatus(tp.CodeInvalidArgument, "stop now", nil))
	select {
	case err := <-handlerSaw:
		if tp.CodeOf(err) != tp.CodeInvalidArgument || !strings.Contains(err.Error(), "stop now") {
			t.Fatalf("the handler saw %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not see the reset")
	}
	if err := s.Send(1); tp.CodeOf(err) != tp.CodeInvalidArgument {
		t.Fatalf("a send after the reset: %v", err)
	}

	s, err = sess.OpenStream(context.Background(), "/give-up")
	if err != nil {
		t.Fatal(err)
	}
	var err3 error
	for i := 0; err3 == nil; i++ {
		var n int
		err3 = s.Recv(&n)
		if err3 == nil && n != i {
			t.Fatalf("message %d: %d", i, n)
		}
	}
	if tp.CodeOf(err3) != tp.CodeFailedPrecondition || !strings.Contains(err3.Error(), "out of patience") {
		t.Fatalf("the opener saw %v", err3)
	}
}

// rawPeer is a hand-driven tp connection: it speaks the frames a test
// chooses, as a peer that breaks the rules would.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	sock *socket.Socket
}

func dialRaw(t *testing.T, addr string, features string) *rawPeer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := socket.New(c, rawproto.New(), socket.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{t, c, s}
	hello := &socket.Message{Type: socket.TypePush}
	if features != "" {
		hello.Meta.Set("tp-features", features)
	}
	r.write(hello)
	return r
}

func (r *rawPeer) write(m *socket.Message) {
	r.t.Helper()
	if err := r.sock.WriteMessage(context.Background(), m); err != nil {
		r.t.Fatal(err)
	}
}

// readUntil reads frames until one matches, or the connection ends.
func (r *rawPeer) readUntil(match func(*socket.Message) bool) (*socket.Message, error) {
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		m := new(socket.Message)
		if err := r.sock.ReadMessage(m); err != nil {
			return nil, err
		}
		if match(m) {
			return m, nil
		}
	}
}

// A peer that sends past its window gets its connection closed, and is
// told why; memory does not grow with what it sends.
func TestFlowControlViolation(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleStream(srv.Router(), "/sink", sink)
	r := dialRaw(t, serve(t, srv), "streams,cancel")
	r.write(&socket.Message{Type: socket.TypeOpen, Seq: 2, ServiceMethod: "/sink"})
	go func() { // ignores every WINDOW: 400 KiB against 256 KiB of credit
		frame := packed(t, &socket.Message{Type: socket.TypeData, Seq: 2, Payload: make([]byte, 8<<10)})
		for range 50 {
			if _, err := r.conn.Write(frame); err != nil {
				return // closed by the server, as it should be
			}
		}
	}()
	notice, err := r.readUntil(func(m *socket.Message) bool { return m.Type == socket.TypePush && m.Status != nil })
	if err != nil || !strings.Contains(notice.Status.Error(), "flow-control violation") {
		t.Fatalf("got %v, %v; want a notice of a flow-control violation", notice, err)
	}
	if _, err := r.readUntil(func(*socket.Message) bool { return false }); tp.CodeOf(err) != tp.CodeConnClosed {
		t.Fatalf("the connection stayed open: %v", err)
	}
}

// Frames that break the stream protocol close the connection with a
// reason; frames for streams that ended are dropped quietly.
func TestStreamProtocolErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames []*socket.Message
		want   string // "" means the connection stays up
	}{
		{"odd id opened", []*socket.Message{{Type: socket.TypeOpen, Seq: 3, ServiceMethod: "/sink"}}, "ids are even"},
		{"id 0 opened", []*socket.Message{{Type: socket.TypeOpen, Seq: 0, ServiceMethod: "/sink"}}, "ids are even"},
		{"opened twice", []*socket.Message{{Type: socket.TypeOpen, Seq: 2, ServiceMethod: "/sink"}, {Type: socket.TypeOpen, Seq: 2, ServiceMethod: "/sink"}}, "twice"},
		{"malformed window", []*socket.Message{{Type: socket.TypeOpen, Seq: 2, ServiceMethod: "/sink"}, {Type: socket.TypeWindow, Seq: 2, Payload: []byte{0xff}}}, "malformed WINDOW"},
		{"4 GiB of credit", []*socket.Message{{Type: socket.TypeOpen, Seq: 2, ServiceMethod: "/sink"},
			{Type: socket.TypeWindow, Seq: 2, Payload: binary.AppendUvarint(nil, 1<<31)}, {Type: socket.TypeWindow, Seq: 2, Payload: binary.AppendUvarint(nil, 1<<31)},
			{Type: socket.TypeWindow, Seq: 2, Payload: binary.AppendUvarint(nil, 1<<31)}}, "4 GiB"},
		{"frames for unknown streams", []*socket.Message{{Type: socket.TypeData, Seq: 8, Payload: []byte("x")}, {Type: socket.TypeWindow, Seq: 9, Payload: []byte{1}},
			{Type: socket.TypeClose, Seq: 10}, {Type: socket.TypeEnd, Seq: 11}, {Type: socket.TypeCancel, Seq: 12}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newPeer(t, tp.PeerConfig{})
			tp.HandleStream(srv.Router(), "/sink", sink)
			srv.RouteCallFunc(Ping)
			r := dialRaw(t, serve(t, srv), "streams,cancel")
			for _, m := range tt.frames {
				r.write(m)
			}
			if tt.want == "" {
				r.write(&socket.Message{Type: socket.TypeCall, Seq: 77, ServiceMethod: "/ping", BodyCodec: codec.JSONID, Payload: []byte("1")})
				if m, err := r.readUntil(func(m *socket.Message) bool { return m.Type == socket.TypeReply }); err != nil || m.Seq != 77 || m.Status != nil {
					t.Fatalf("a call after them: %v, %v", m, err)
				}
				return
			}
			notice, err := r.readUntil(func(m *socket.Message) bool { return m.Type == socket.TypePush && m.Status != nil })
			if err != nil || !strings.Contains(notice.Status.Error(), tt.want) {
				t.Fatalf("got %v, %v; want a notice with %q", notice, err, tt.want)
			}
		})
	}
}

// A caller that stops waiting ends the handler's context at once, and
// says why; the same for a stream's opener.
func TestCancelReachesTheHandler(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	wait := func(ctx context.Context) error {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			ended <- context.Cause(ctx)
		case <-time.After(10 * time.Second):
			ended <- errors.New("the context did not end")
		}
		return nil
	}
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleCall(srv.Router(), "/wait", func(ctx tp.CallCtx, _ *int) (int, error) { return 0, wait(ctx.Context()) })
		tp.HandleStream(srv.Router(), "/wait", func(ctx tp.StreamCtx, s *tp.Stream) error { return wait(ctx.Context()) })
	})
	for _, tt := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"call", func(ctx context.Context) error { return sess.Call(ctx, "/wait", 1, nil).Err() }},
		{"async call", func(ctx context.Context) error {
			c := sess.AsyncCall(ctx, "/wait", 1, nil, nil)
			<-c.Done()
			return c.Err()
		}},
		{"stream", func(ctx context.Context) error {
			s, err := sess.OpenStream(ctx, "/wait")
			if err != nil {
				return err
			}
			return s.Recv(new(int))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- tt.run(ctx) }()
			<-started
			at := time.Now()
			cancel()
			if err := <-errc; tp.CodeOf(err) != tp.CodeCanceled {
				t.Fatalf("the caller got %v", err)
			}
			cause := <-ended
			took := time.Since(at)
			if !errors.Is(cause, context.Canceled) || tp.CodeOf(cause) != tp.CodeCanceled {
				t.Fatalf("the handler's context ended with %v", cause)
			}
			if limit := 50 * time.Millisecond; took > limit {
				t.Fatalf("the handler's context ended %v after the cancel", took)
			}
			t.Logf("the handler's context ended %v after the cancel: %v", took, cause)
		})
	}
}

// Past MaxStreams the peer's streams are refused, and others open again
// once some end.
func TestMaxStreams(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{MaxStreams: 2}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/sink", sink)
		tp.HandleStream(srv.Router(), "/echo", echoStream)
	})
	ctx := context.Background()
	var open []*tp.Stream
	for range 2 {
		s, err := sess.OpenStream(ctx, "/sink")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	s, err := sess.OpenStream(ctx, "/echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recv(new(string)); tp.CodeOf(err) != tp.CodeOverloaded || !strings.Contains(err.Error(), "MaxStreams") {
		t.Fatalf("a third stream: %v", err)
	}
	open[0].Close()
	waitFor(t, "a stream to open again", func() bool { return checkEcho(ctx, sess, "again", 3) == nil })
}

// A peer whose tp predates streams (its hello lists none) is never sent
// their frames: OpenStream says so, and a canceled call sends no CANCEL.
func TestOlderPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frames := make(chan socket.Type, 16)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, _ := socket.New(c, rawproto.New(), socket.Config{})
		s.WriteMessage(context.Background(), &socket.Message{Type: socket.TypePush}) // a hello with no features
		for {
			m := new(socket.Message)
			if s.ReadMessage(m) != nil {
				close(frames)
				return
			}
			frames <- m.Type
		}
	}()
	cli := newPeer(t, tp.PeerConfig{})
	sess := dial(t, cli, ln.Addr().String())
	if _, err := sess.OpenStream(context.Background(), "/x"); tp.CodeOf(err) != tp.CodeUnsupported {
		t.Fatalf("a stream to an older peer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sess.Call(ctx, "/never-answered", 1, nil)
	sess.Close()
	for typ := range frames {
		if typ > socket.TypePush {
			t.Fatalf("the older peer got a %s", typ)
		}
	}
}

// A stream handler that panics ends its stream with CodeInternal; a
// session that closes ends its streams.
func TestStreamEnds(t *testing.T) {
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/panic", func(tp.StreamCtx, *tp.Stream) error { panic("boom") })
		tp.HandleStream(srv.Router(), "/sink", sink)
	})
	s, err := sess.OpenStream(context.Background(), "/panic")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recv(new(int)); tp.CodeOf(err) != tp.CodeInternal {
		t.Fatalf("a panicking handler: %v", err)
	}
	s, err = sess.OpenStream(context.Background(), "/sink")
	if err != nil {
		t.Fatal(err)
	}
	for back := range srv.Sessions() {
		back.Close()
	}
	if err := s.Recv(new(int)); tp.CodeOf(err) != tp.CodeConnClosed {
		t.Fatalf("a stream whose session closed: %v", err)
	}
}

type Chat struct{ joined atomic.Int64 }

func (c *Chat) Join(ctx tp.StreamCtx, s *tp.Stream) error {
	c.joined.Add(1)
	return echoStream(ctx, s)
}

// streamHooks records the stream hooks it sees, and refuses a method.
type streamHooks struct {
	mu     sync.Mutex
	opened []string
	done   []string
}

func (*streamHooks) Name() string { return "stream-hooks" }
func (h *streamHooks) StreamOpen(s *tp.Stream) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened = append(h.opened, fmt.Sprintf("%v %s", s.Opened(), s.ServiceMethod()))
	if s.ServiceMethod() == "/refused" && !s.Opened() {
		return tp.NewStatus(tp.CodeUnauthorized, "not this one", nil)
	}
	return nil
}
func (h *streamHooks) StreamDone(s *tp.Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = append(h.done, fmt.Sprintf("%v %s %v", s.Opened(), s.Route(), tp.CodeOf(s.Err())))
}

// Streams route by function name like calls, and plugins see them open
// and end at both ends.
func TestStreamRoutesAndHooks(t *testing.T) {
	srvHooks, cliHooks := new(streamHooks), new(streamHooks)
	chat := new(Chat)
	srv := newPeer(t, tp.PeerConfig{}, srvHooks)
	if got := srv.RouteStreamFunc(chat.Join); got != "/chat/join" {
		t.Fatalf("route %q", got)
	}
	tp.HandleStream(srv.Router(), "/refused", echoStream)
	cli := newPeer(t, tp.PeerConfig{}, cliHooks)
	sess := dial(t, cli, serve(t, srv))
	ctx := context.Background()
	s, err := sess.OpenStream(ctx, "/chat/join")
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.Send("hi"); err != nil {
		t.Fatal(err)
	}
	if err := s.Recv(&v); err != nil || v != "hi" {
		t.Fatalf("%q %v", v, err)
	}
	s.CloseSend()
	if err := s.Recv(&v); err != io.EOF {
		t.Fatal(err)
	}
	s, err = sess.OpenStream(ctx, "/refused")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Recv(&v); tp.CodeOf(err) != tp.CodeUnauthorized {
		t.Fatalf("a stream a hook refused: %v", err)
	}
	waitFor(t, "every StreamDone", func() bool {
		srvHooks.mu.Lock()
		defer srvHooks.mu.Unlock()
		cliHooks.mu.Lock()
		defer cliHooks.mu.Unlock()
		return len(srvHooks.done) == 2 && len(cliHooks.done) == 2
	})
	want := map[*streamHooks][2][]string{
		cliHooks: {{"true /chat/join", "true /refused"}, {"true /chat/join ok", "true /refused unauthorized"}},
		srvHooks: {{"false /chat/join", "false /refused"}, {"false /chat/join ok", "false /refused unauthorized"}},
	}
	for h, w := range want {
		slices.Sort(h.done) // a handler's end and the next stream's may pass each other
		if !slices.Equal(h.opened, w[0]) || !slices.Equal(h.done, w[1]) {
			t.Errorf("opened %q, done %q; want %q, %q", h.opened, h.done, w[0], w[1])
		}
	}
	if chat.joined.Load() != 1 {
		t.Fatalf("the handler ran %d times", chat.joined.Load())
	}
}

// Feed serves /feed/numbers: one value per stream, as RouteCall's
// controllers are per call.
type Feed struct {
	tp.StreamCtx
	sent int
}

// Numbers streams 0 to the count asked in the opening's meta.
func (f *Feed) Numbers(s *tp.Stream) error {
	n, _ := strconv.Atoi(f.PeekMeta("count"))
	for ; f.sent < n; f.sent++ {
		if err := s.Send(f.sent); err != nil {
			return err
		}
	}
	return nil
}

func (f *Feed) helper() int { return f.sent }

func TestRouteStream(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		if got := srv.RouteStream(new(Feed)); !slices.Equal(got, []string{"/feed/numbers"}) {
			t.Fatalf("routes %q", got)
		}
	})
	for range 2 { // a fresh Feed each time
		s, err := sess.OpenStream(context.Background(), "/feed/numbers", tp.WithSetMeta("count", "3"))
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for {
			var n int
			if err := s.Recv(&n); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		if !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("got %v", got)
		}
	}
	_ = new(Feed).helper()
}
