package tp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// A burst of calls whose handlers all block must not wait behind one
// another: handler goroutines take queued messages in turn, and a handler
// that parks must leave a spare to take the next.
func TestBlockedHandlersHoldNobody(t *testing.T) {
	bs := newBlocks()
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, bs.routes)
	const n = 200
	done := make(chan *tp.CallCmd, n)
	results := make([]int, n)
	for i := range n {
		sess.AsyncCall(context.Background(), "/blocker/wait", i, &results[i], done)
	}
	waitFor(t, "every handler of the burst to run at once", func() bool { return bs.entered.Load() == n })
	if running, size := srv.PoolUsage(); running != n || size != 10000 {
		t.Fatalf("PoolUsage with %d handlers blocked: %d of %d", n, running, size)
	}
	var got int
	if err := sess.Call(context.Background(), "/blocker/echo", 7, &got).Err(); err != nil || got != 7 {
		t.Fatalf("a call while %d handlers block: %d, %v", n, got, err)
	}
	close(bs.release)
	for range n {
		if c := <-done; c.Err() != nil {
			t.Fatalf("call %d: %v", c.Seq(), c.Err())
		}
	}
	for i, r := range results {
		if r != i {
			t.Fatalf("call %d answered %d", i, r)
		}
	}
	waitFor(t, "the pool to be idle", func() bool { running, _ := srv.PoolUsage(); return running == 0 })
}

// With every handler goroutine the pool allows busy, the rest of a burst
// is refused at once, whichever path it takes; with several sessions, the
// bursts of the others too.
func TestPoolFullRefusesBurst(t *testing.T) {
	for _, sessions := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d sessions", sessions), func(t *testing.T) {
			const pool, perSession = 3, 12
			bs := newBlocks()
			srv := newPeer(t, tp.PeerConfig{PoolSize: pool})
			bs.routes(srv)
			addr := serve(t, srv)
			cli := newPeer(t, tp.PeerConfig{})
			n := sessions * perSession
			done := make(chan *tp.CallCmd, n)
			for range sessions {
				sess := dial(t, cli, addr)
				go func() {
					for i := range perSession {
						sess.AsyncCall(context.Background(), "/blocker/wait", i, nil, done)
					}
				}()
			}
			timeout := time.After(10 * time.Second)
			for range n - pool {
				select {
				case c := <-done:
					if c.Status().Code() != tp.CodeOverloaded {
						t.Fatalf("call %d: %v, want overloaded", c.Seq(), c.Status())
					}
				case <-timeout:
					t.Fatal("the calls the pool had no room for were not refused")
				}
			}
			waitFor(t, "the pool's handlers", func() bool { return bs.entered.Load() == pool })
			close(bs.release)
			for range pool {
				if c := <-done; c.Err() != nil {
					t.Fatalf("call %d: %v", c.Seq(), c.Err())
				}
			}
		})
	}
}
