package socket

import (
	"context"
	"io"
	"net"
	"testing"
)

// One large frame does not leave the writer's buffers large for the rest
// of the connection's life; an idle writer holds no buffer at all.
func TestWriterDropsLargeBuffers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	var w writer
	w.init(a, 64<<10)
	big := make([]byte, 8<<20)
	if err := w.write(context.Background(), big, waitForRoom); err != nil {
		t.Fatal(err)
	}
	for range 3 { // a few small frames after it
		if err := w.write(context.Background(), make([]byte, 100), waitForRoom); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	if c := cap(*w.spare); c > w.maxPending {
		t.Fatalf("after an 8 MiB frame the writer keeps a %d-byte buffer (MaxPending %d)", c, w.maxPending)
	}
	w.mu.Unlock()
	// Idle for two trims: no buffer at all.
	w.trim()
	w.trim()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending != nil || w.spare != nil {
		t.Fatalf("an idle writer holds buffers: %v, %v", w.pending != nil, w.spare != nil)
	}
}
