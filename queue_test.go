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

// On a quiet peer the read goroutine runs a handler itself; one that then
// blocks holds up the messages behind it only briefly, as another
// goroutine takes the reads over, and it counts against PoolSize.
func TestHandlerOnTheReadGoroutineHoldsNobody(t *testing.T) {
	for _, poolSize := range []int{0, 2} {
		t.Run(fmt.Sprint("pool ", poolSize), func(t *testing.T) {
			bs := newBlocks()
			srv, _, sess := pair(t, tp.PeerConfig{PoolSize: poolSize}, tp.PeerConfig{}, bs.routes)
			first := sess.AsyncCall(context.Background(), "/blocker/wait", 1, nil, nil) // alone: run by the reader
			waitFor(t, "the first handler", func() bool { return bs.entered.Load() == 1 })
			if poolSize == 0 {
				for i := range 50 {
					var got int
					start := time.Now()
					if err := sess.Call(context.Background(), "/blocker/echo", i, &got).Err(); err != nil || got != i {
						t.Fatalf("call %d behind a blocked handler: %d, %v", i, got, err)
					}
					if d := time.Since(start); d > time.Second {
						t.Fatalf("call %d took %v behind a blocked handler", i, d)
					}
				}
			} else {
				// The blocked one and a second fill PoolSize 2: the next
				// is refused.
				sess.AsyncCall(context.Background(), "/blocker/wait", 2, nil, nil)
				waitFor(t, "the second handler", func() bool { return bs.entered.Load() == 2 })
				if running, _ := srv.PoolUsage(); running != 2 {
					t.Fatalf("%d handlers running, want 2", running)
				}
				if st := sess.Call(context.Background(), "/blocker/wait", 3, nil).Status(); tp.CodeOf(st) != tp.CodeOverloaded {
					t.Fatalf("a third with PoolSize 2: %v", st)
				}
			}
			close(bs.release)
			<-first.Done()
			if first.Err() != nil {
				t.Fatal(first.Err())
			}
		})
	}
}
