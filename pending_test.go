package tp

import "testing"

// A burst of waiting calls does not leave the pending table's maps at
// their peak size once the calls are answered (Go maps never shrink).
func TestPendingShrinksAfterBurst(t *testing.T) {
	var p pendingCalls
	const n = 100_000
	for i := range uint32(n) {
		if p.add(&CallCmd{seq: i}) != added {
			t.Fatal("add failed")
		}
	}
	for i := range uint32(n) {
		if c := p.take(i); c == nil || c.seq != i {
			t.Fatalf("take(%d) = %v", i, c)
		}
	}
	for i := range p.shards {
		if s := &p.shards[i]; s.calls != nil {
			t.Fatalf("shard %d keeps a map that held %d calls", i, s.peak)
		}
	}
	if p.n.Load() != 0 {
		t.Fatalf("%d calls counted after all were taken", p.n.Load())
	}
}
