package tp_test

import (
	"os"
	"sync"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
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

// The helpers plugin tests share too.
var (
	quiet   = tptest.Quiet
	newPeer = tptest.NewPeer
	serve   = tptest.Serve
	dial    = tptest.Dial
	waitFor = tptest.WaitFor
)

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
