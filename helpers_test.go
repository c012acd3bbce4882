package tp_test

import (
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"go.uber.org/goleak"
)

// IgnoreCurrent skips the default pool ants starts in its init; every
// pool a Peer owns must still be gone when the tests end.
func TestMain(m *testing.M) {
	if addr, ok := os.LookupEnv(childServeEnv); ok {
		childServe(addr) // a server process for the crash tests
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newPeer returns a peer with a quiet logger, closed when the test ends.
func newPeer(t testing.TB, cfg tp.PeerConfig, ps ...tp.Plugin) *tp.Peer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	p := tp.NewPeer(cfg, ps...)
	t.Cleanup(func() { p.Close() })
	return p
}

// serve starts srv on an ephemeral loopback port and returns the address.
func serve(t testing.TB, srv *tp.Peer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *tp.Status, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if st := <-done; st != nil {
			t.Errorf("Serve: %v", st)
		}
	})
	return ln.Addr().String()
}

func dial(t testing.TB, cli *tp.Peer, addr string) *tp.Session {
	t.Helper()
	s, st := cli.Dial(addr)
	if st != nil {
		t.Fatal(st)
	}
	return s
}

// pair starts a server peer set up by route and dials it from a new
// client peer.
func pair(t testing.TB, srvCfg, cliCfg tp.PeerConfig, route func(srv *tp.Peer)) (srv, cli *tp.Peer, sess *tp.Session) {
	t.Helper()
	srv = newPeer(t, srvCfg)
	if route != nil {
		route(srv)
	}
	addr := serve(t, srv)
	cli = newPeer(t, cliCfg)
	return srv, cli, dial(t, cli, addr)
}

// callers runs call in n goroutines, over and over, until call returns
// false or the returned stop is called; stop waits for them.
func callers(n int, call func() bool) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				if !call() {
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}
