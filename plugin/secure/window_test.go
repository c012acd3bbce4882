package secure

import (
	"testing"

	"github.com/seed-a9a850dd/tp/socket"
)

func TestWindow(t *testing.T) {
	var w window
	steps := []struct {
		c    uint64
		want bool
	}{
		{0, false}, // never sealed
		{1, true}, {1, false},
		{3, true}, {2, true}, {2, false}, {3, false},
		{windowSize + 2, true}, // 2 slides out
		{2, false}, {3, false}, {4, true},
		{windowSize + 1, true}, {windowSize + 1, false},
		{3 * windowSize, true}, // a jump past the whole window
		{2*windowSize + 1, true}, {2 * windowSize, false},
		{3*windowSize - 1, true}, {3 * windowSize, false},
		{1<<64 - 1, true}, {1<<64 - 1, false}, {1<<64 - 2, true},
	}
	for i, s := range steps {
		if got := w.accept(s.c); got != s.want {
			t.Fatalf("step %d: accept(%d) = %v, want %v", i, s.c, got, s.want)
		}
	}
}

func FuzzWindow(f *testing.F) {
	f.Add([]byte{1, 2, 3, 200, 4})
	f.Fuzz(func(t *testing.T, steps []byte) {
		var w window
		seen := map[uint64]bool{}
		var c uint64 = 1 << 20
		for i, b := range steps {
			// Walk forward or back by up to a window and a bit.
			d := uint64(b) * windowSize / 100
			if i%2 == 1 {
				c -= d
			} else {
				c += d
			}
			got := w.accept(c)
			if got && seen[c] {
				t.Fatalf("counter %d accepted twice", c)
			}
			if got {
				seen[c] = true
			}
			if !got && !seen[c] && c+windowSize > w.top {
				t.Fatalf("counter %d, new and within the window of %d, refused", c, w.top)
			}
		}
	})
}

// Past the bound, sealing fails rather than wrap the nonce's counter.
func TestSealBound(t *testing.T) {
	key := make([]byte, 32)
	a, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	k := &keys{seal: a, open: a}
	k.sealed.Store(maxSealed - 1)
	m := new(socket.Message)
	if err := k.Seal(m, true); err != nil {
		t.Fatalf("the last message: %v", err)
	}
	for range 3 {
		m := new(socket.Message)
		if err := k.Seal(m, true); err != errWornOut {
			t.Fatalf("past the bound: %v", err)
		}
	}
	if err := k.Open(m, true); err != nil {
		t.Fatalf("the last message does not open: %v", err)
	}
}
