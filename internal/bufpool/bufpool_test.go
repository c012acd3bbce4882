package bufpool

import "testing"

func TestGetPut(t *testing.T) {
	tests := []struct{ n, wantCap int }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {600, 1024}, {4 << 20, 4 << 20}, {4<<20 + 1, 4<<20 + 1},
	}
	for _, tt := range tests {
		b := Get(tt.n)
		if len(*b) != 0 || cap(*b) != tt.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want 0 and %d", tt.n, len(*b), cap(*b), tt.wantCap)
		}
		Put(b)
	}
	// A buffer that grew by append serves the class its capacity fills.
	b := Get(600)
	*b = append(*b, make([]byte, 3000)...)
	Put(b)
	for i := 0; i < 100; i++ {
		if got := Get(2048); cap(*got) < 2048 {
			t.Fatalf("Get(2048) returned cap %d", cap(*got))
		}
	}
	Put(nil) // no panic
}
