package socket_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// With the connection stalled, a writer whose context ends while it waits
// for room gives up, and nothing of its frame reaches the wire; the frames
// that were queued arrive whole once the connection moves again.
func TestWriteGivesUpWithContext(t *testing.T) {
	a, b := tcpPair(t)
	gate := newGateConn(a)
	w := newSocket(t, gate, socket.Config{MaxPending: 1024})
	r := newSocket(t, b, socket.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.WriteMessage(ctx, push(0, "first")); err != nil { // the flusher's first write stalls
		t.Fatal(err)
	}
	<-gate.entered
	big := string(bytes.Repeat([]byte("q"), 2000))
	if err := w.WriteMessage(ctx, push(1, big)); err != nil { // queued: pending was under the bound
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	err := w.WriteMessage(short, push(2, "never"))
	if status.From(err, 0, "").Code() != status.Timeout {
		t.Fatalf("a write that found no room: %v, want timeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the write gave up after %v with a 50ms deadline", took)
	}
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if err := w.WriteMessage(canceled, push(3, "never")); status.From(err, 0, "").Code() != status.Canceled {
		t.Fatalf("a write with a canceled context: %v, want canceled", err)
	}
	close(gate.open)
	got := readAll(t, r, 2)
	if got[0] != "first" || got[1] != big {
		t.Fatalf("the queued frames did not arrive whole: %d bytes, %d bytes", len(got[0]), len(got[1]))
	}
	w.Close()
	m := socket.AcquireMessage()
	if err := r.ReadMessage(m); status.From(err, 0, "").Code() != status.ConnClosed {
		t.Fatalf("after the queued frames: %v (seq %d), want the end of the connection", err, m.Seq)
	}
}

// QueueMessage never waits for room, and fails once the peer has left
// four times MaxPending unread.
func TestQueueNeverWaits(t *testing.T) {
	a, _ := tcpPair(t)
	gate := newGateConn(a)
	w := newSocket(t, gate, socket.Config{MaxPending: 1024})
	if err := w.QueueMessage(push(0, "first")); err != nil {
		t.Fatal(err)
	}
	<-gate.entered
	body := string(bytes.Repeat([]byte("r"), 500))
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < 100 && err == nil; i++ {
			err = w.QueueMessage(push(uint32(i), body))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("QueueMessage waited for a stalled connection")
	}
	if status.From(err, 0, "").Code() != status.WriteFailed {
		t.Fatalf("queueing 50 KB for a peer that reads nothing: %v, want write failed", err)
	}
	close(gate.open)
}

// Shutdown bounds the flush by its context on a connection whose peer
// reads nothing, however long the flush timeout.
func TestShutdownBoundedOnStalledConn(t *testing.T) {
	a, _ := tcpPair(t) // the other end never reads
	w, err := socket.New(a, rawproto.New(), socket.Config{FlushTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// More than the kernel's buffers hold: the flusher's write blocks.
	if err := w.QueueMessage(push(0, string(bytes.Repeat([]byte("s"), 32<<20)))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	w.Shutdown(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Shutdown took %v with a 100ms context", took)
	}
}
