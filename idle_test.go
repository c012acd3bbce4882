package tp_test

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/seed-a9a850dd/tp"
)

// An idle session costs little: buffers belong to a connection only while
// a frame is arriving or leaving (read buffers go back once drained, write
// buffers at the next trims). 5,000 session pairs in one process, idle
// before any call, after one call each, and after a tenth of them moved
// 256 KiB each way; heap and stacks per end must stay within 12 KiB. Skipped under -race, whose detector allows
// fewer goroutines than 5,000 pairs need, and by -short.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs without -short and without -race")
	}
	const pairs, limit = 5000, 12 << 10
	srv := newPeer(t, tp.PeerConfig{MaxHandshakes: pairs})
	srv.RouteCallFunc(Ping)
	tp.HandleCall(srv.Router(), "/blob", func(_ tp.CallCtx, b *[]byte) ([]byte, error) { return *b, nil })
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	base := memory()
	sessions := make([]*tp.Session, pairs)
	for i := range sessions {
		sessions[i] = dial(t, cli, addr)
	}
	waitFor(t, "the server to hold every session", func() bool { return srv.CountSession() == pairs })
	// Two collections: the first leaves pooled buffers in sync.Pool's victim
	// cache, which belongs to no session.
	perEnd := func() uint64 {
		runtime.GC()
		return (memory() - base) / (2 * pairs)
	}
	idle := perEnd()
	for _, s := range sessions {
		var n int
		if err := s.Call(context.Background(), "/ping", 1, &n).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after := perEnd()
	// A tenth of them move 256 KiB each way at once, then idle again.
	blob := make([]byte, 256<<10)
	var wg sync.WaitGroup
	for _, s := range sessions[:pairs/10] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var back []byte
			if err := s.Call(context.Background(), "/blob", blob, &back).Err(); err != nil || len(back) != len(blob) {
				t.Errorf("a large call: %d bytes back, %v", len(back), err)
			}
		}()
	}
	wg.Wait()
	// Their buffers go back within two trims (a peer trims every second).
	var afterLarge uint64
	waitFor(t, "the write buffers to be trimmed", func() bool {
		afterLarge = perEnd()
		return afterLarge <= limit
	})
	t.Logf("per session end: %d bytes idle, %d idle after a call, %d idle after large calls", idle, after, afterLarge)
	if idle > limit || after > limit || afterLarge > limit {
		t.Fatalf("an idle session end takes %d bytes (%d after a call, %d after large ones); the bound is %d", idle, after, afterLarge, limit)
	}
}
