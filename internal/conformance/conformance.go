// Package conformance is the behaviour every tp transport must show, as
// tests any transport's package runs over its own listener and dialer:
// calls and pushes both ways, streams under a slow reader, cancellation,
// many calls at once, deadlines, graceful close, a cut connection, and a
// redial after the server restarts.
package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
)

// Transport is what the tests need of a transport.
type Transport struct {
	// Listen listens on addr ("" for any free loopback address).
	Listen func(addr string) (net.Listener, error)
	// Dialer is PeerConfig.Dialer for this transport.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Addr turns a listener's address into what Dial takes.
	Addr func(ln net.Listener) string
	// Plugins, if set, gives the plugins each peer needs on this
	// transport (a heartbeat, where a closed connection is not seen).
	Plugins func() []tp.Plugin
}

func (tr Transport) plugins() []tp.Plugin {
	if tr.Plugins == nil {
		return nil
	}
	return tr.Plugins()
}

// Run runs every case over tr.
func Run(t *testing.T, tr Transport) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Transport)
	}{
		{"calls and pushes both ways", callsBothWays},
		{"streams under a slow reader", slowStream},
		{"a canceled call reaches the handler", cancelReaches},
		{"1000 calls at once", manyCalls},
		{"deadlines reach the handler", deadlines},
		{"graceful close finishes calls", gracefulClose},
		{"a cut connection fails pending calls", cutConnection},
		{"redial after the server restarts", redial},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, tr) })
	}
}

// conns records a listener's connections, so a test can cut them.
type conns struct {
	net.Listener
	mu sync.Mutex
	cs []net.Conn
}

func (l *conns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.cs = append(l.cs, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *conns) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cs {
		c.Close()
	}
}

// server starts a peer serving on a new listener of tr, set up by route.
func server(t *testing.T, tr Transport, cfg tp.PeerConfig, addr string, route func(*tp.Peer)) (*tp.Peer, *conns, string) {
	t.Helper()
	ln, err := tr.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	l := &conns{Listener: ln}
	srv := tptest.NewPeer(t, cfg, tr.plugins()...)
	if route != nil {
		route(srv)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv, l, tr.Addr(ln)
}

func client(t *testing.T, tr Transport, cfg tp.PeerConfig, addr string, route func(*tp.Peer)) (*tp.Peer, *tp.Session) {
	t.Helper()
	cfg.Dialer = tr.Dialer
	cli := tptest.NewPeer(t, cfg, tr.plugins()...)
	if route != nil {
		route(cli)
	}
	return cli, tptest.Dial(t, cli, addr)
}

func add(_ tp.CallCtx, n *int) (int, error) { return *n + 1, nil }

func echoStream(_ tp.StreamCtx, s *tp.Stream) error {
	for {
		var b []byte
		if err := s.Recv(&b); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := s.Send(b); err != nil {
			return err
		}
	}
}

func routes(p *tp.Peer, pushed chan<- int) {
	tp.HandleCall(p.Router(), "/add", add)
	tp.HandlePush(p.Router(), "/note", func(_ tp.PushCtx, n *int) error { pushed <- *n; return nil })
	tp.HandleStream(p.Router(), "/echo", echoStream)
	tp.HandleStream(p.Router(), "/sink", func(ctx tp.StreamCtx, _ *tp.Stream) error {
		<-ctx.Context().Done()
		return nil
	})
}

func callsBothWays(t *testing.T, tr Transport) {
	srvPushed, cliPushed := make(chan int, 1), make(chan int, 1)
	srv, _, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) { routes(p, srvPushed) })
	_, sess := client(t, tr, tp.PeerConfig{}, addr, func(p *tp.Peer) { routes(p, cliPushed) })
	var back *tp.Session
	for s := range srv.Sessions() {
		back = s
	}
	for _, tt := range []struct {
		name   string
		s      *tp.Session
		pushed chan int
	}{{"client to server", sess, srvPushed}, {"server to client", back, cliPushed}} {
		n, err := tp.Call[int](context.Background(), tt.s, "/add", 41)
		if err != nil || n != 42 {
			t.Fatalf("%s: call: %d, %v", tt.name, n, err)
		}
		if err := tt.s.Push(context.Background(), "/note", 7); err != nil {
			t.Fatalf("%s: push: %v", tt.name, err)
		}
		if got := <-tt.pushed; got != 7 {
			t.Fatalf("%s: pushed %d", tt.name, got)
		}
		st, err := tt.s.OpenStream(context.Background(), "/echo")
		if err != nil {
			t.Fatalf("%s: stream: %v", tt.name, err)
		}
		for i := range 100 {
			if err := st.Send([]byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			var b []byte
			if err := st.Recv(&b); err != nil || string(b) != fmt.Sprint(i) {
				t.Fatalf("%s: stream message %d: %q %v", tt.name, i, b, err)
			}
		}
		st.CloseSend()
		if err := st.Recv(new([]byte)); err != io.EOF {
			t.Fatalf("%s: stream end: %v", tt.name, err)
		}
	}
}

func slowStream(t *testing.T, tr Transport) {
	_, _, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) { routes(p, nil) })
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	st, err := sess.OpenStream(context.Background(), "/sink")
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		msg := make([]byte, 1000)
		for {
			if err := st.Send(msg); err != nil {
				done <- err
				return
			}
			sent.Add(int64(len(msg)))
		}
	}()
	var last int64 = -1
	tptest.WaitFor(t, "the sender to stop at the window", func() bool {
		n := sent.Load()
		stopped := n == last && n > 0
		last = n
		time.Sleep(20 * time.Millisecond)
		return stopped
	})
	if n := sent.Load(); n > 256<<10 {
		t.Fatalf("sent %d bytes to a reader that reads nothing; the window is 256 KiB", n)
	}
	if n, err := tp.Call[int](context.Background(), sess, "/add", 1); err != nil || n != 2 {
		t.Fatalf("a call beside the stalled stream: %d, %v", n, err)
	}
	st.Close()
	if err := <-done; tp.CodeOf(err) != tp.CodeCanceled {
		t.Fatalf("the blocked Send after Close: %v", err)
	}
}

func cancelReaches(t *testing.T, tr Transport) {
	started, ended := make(chan struct{}), make(chan error, 1)
	_, _, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) {
		tp.HandleCall(p.Router(), "/wait", func(ctx tp.CallCtx, _ *int) (int, error) {
			close(started)
			<-ctx.Context().Done()
			ended <- context.Cause(ctx.Context())
			return 0, nil
		})
	})
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if err := sess.Call(ctx, "/wait", 1, nil).Err(); tp.CodeOf(err) != tp.CodeCanceled {
		t.Fatalf("the caller: %v", err)
	}
	select {
	case cause := <-ended:
		if !errors.Is(cause, context.Canceled) {
			t.Fatalf("the handler's context ended with %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancel did not reach the handler")
	}
}

func manyCalls(t *testing.T, tr Transport) {
	_, _, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) { routes(p, nil) })
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := tp.Call[int](context.Background(), sess, "/add", i); err != nil || n != i+1 {
				errs <- fmt.Errorf("call %d: %d, %v", i, n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func deadlines(t *testing.T, tr Transport) {
	got := make(chan time.Duration, 1)
	_, _, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) {
		tp.HandleCall(p.Router(), "/deadline", func(ctx tp.CallCtx, _ *int) (int, error) {
			d, _ := ctx.Context().Deadline()
			got <- time.Until(d)
			return 0, nil
		})
	})
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := sess.Call(ctx, "/deadline", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	if left := <-got; left <= 0 || left > 2*time.Second {
		t.Fatalf("the handler's deadline was %v away; the caller's 2s", left)
	}
}

func gracefulClose(t *testing.T, tr Transport) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	srv, _, addr := server(t, tr, tp.PeerConfig{ShutdownTimeout: 5 * time.Second}, "", func(p *tp.Peer) {
		tp.HandleCall(p.Router(), "/slow", func(_ tp.CallCtx, n *int) (int, error) {
			entered <- struct{}{}
			<-release
			return *n, nil
		})
	})
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	cmds := make([]*tp.CallCmd, 10)
	for i := range cmds {
		cmds[i] = sess.AsyncCall(context.Background(), "/slow", i, new(int), nil)
	}
	for range cmds {
		<-entered
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	time.Sleep(50 * time.Millisecond) // Close is waiting for the handlers
	close(release)
	for i, c := range cmds {
		<-c.Done()
		if err := c.Err(); err != nil {
			t.Fatalf("call %d in flight at Close: %v", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func cutConnection(t *testing.T, tr Transport) {
	entered := make(chan struct{}, 1)
	_, l, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) {
		tp.HandleCall(p.Router(), "/hang", func(ctx tp.CallCtx, _ *int) (int, error) {
			entered <- struct{}{}
			<-ctx.Context().Done()
			return 0, nil
		})
	})
	_, sess := client(t, tr, tp.PeerConfig{}, addr, nil)
	c := sess.AsyncCall(context.Background(), "/hang", 1, nil, nil)
	<-entered
	l.cut()
	select {
	case <-c.Done():
		if tp.CodeOf(c.Err()) != tp.CodeConnClosed {
			t.Fatalf("a pending call on a cut connection: %v", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pending call outlived its cut connection")
	}
}

func redial(t *testing.T, tr Transport) {
	srv, l, addr := server(t, tr, tp.PeerConfig{}, "", func(p *tp.Peer) { routes(p, nil) })
	_, sess := client(t, tr, tp.PeerConfig{RedialTimes: -1, RedialInterval: 20 * time.Millisecond}, addr, nil)
	if _, err := tp.Call[int](context.Background(), sess, "/add", 1); err != nil {
		t.Fatal(err)
	}
	listenAddr := l.Addr().String()
	srv.Close()
	server(t, tr, tp.PeerConfig{}, listenAddr, func(p *tp.Peer) { routes(p, nil) })
	// A redial into nothing (the old server gone, the new one not yet
	// listening) may wait a handshake timeout (10 s) on a transport that
	// cannot fail a dial (KCP): room for one such attempt.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		n, err := tp.Call[int](ctx, sess, "/add", 1)
		if err == nil && n == 2 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no call succeeded after the server restarted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SelfSigned returns a server TLS config with a fresh certificate for
// 127.0.0.1 and localhost, and a client config that trusts it.
func SelfSigned(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tp conformance"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}
