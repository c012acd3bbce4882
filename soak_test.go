package tp_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// memory is the heap and goroutine stacks in use, after a collection.
func memory() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestSoak holds 2,000 sessions, first idle and then all calling at once
// for TP_SOAK (default 10s), and reports the memory per session. The heap
// at the end of the load may exceed the heap early in it by at most 16 MiB.
// It is skipped by -short, and under -race, whose detector allows fewer
// goroutines than 2,000 session pairs need; CI runs it without -race.
func TestSoak(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("the soak runs without -short and without -race")
	}
	d := 10 * time.Second
	if s := os.Getenv("TP_SOAK"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("TP_SOAK=%q: %v", s, err)
		}
	}
	const n = 2000
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})

	base := memory()
	sessions := make([]*tp.Session, n)
	for i := range sessions {
		sessions[i] = dial(t, cli, addr)
	}
	waitFor(t, "the server to hold every session", func() bool { return srv.CountSession() == n })
	idle := memory()
	t.Logf("idle: %d sessions take %d KiB: %d bytes per session pair (both ends of each connection, in one process)",
		n, (idle-base)>>10, (idle-base)/n)

	var calls, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var out int
				if err := s.Call(context.Background(), "/ping", i, &out).Err(); err != nil || out != i+1 {
					failures.Add(1)
				}
				calls.Add(1)
			}
		}()
	}
	warm := time.NewTimer(d / 10)
	<-warm.C
	start := memory()
	t.Logf("active: %d bytes per session pair while all %d call at once", (start-base)/n, n)
	end := time.NewTimer(d - d/10)
	<-end.C
	last := memory() // while still under load
	close(stop)
	wg.Wait()
	t.Logf("%d calls in %v (%.0f/s), %d failed; memory %d KiB early in the load, %d KiB at its end",
		calls.Load(), d, float64(calls.Load())/d.Seconds(), failures.Load(), start>>10, last>>10)
	if failures.Load() > 0 {
		t.Errorf("%d calls failed", failures.Load())
	}
	if last > start+16<<20 {
		t.Errorf("memory grew from %d KiB to %d KiB under steady load", start>>10, last>>10)
	}
}
