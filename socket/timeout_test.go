package socket_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

func TestIdleTimeout(t *testing.T) {
	_, b := tcpPair(t)
	r := newSocket(t, b, socket.Config{IdleTimeout: 50 * time.Millisecond})
	start := time.Now()
	err := r.ReadMessage(socket.AcquireMessage())
	if status.From(err, 0, "").Code() != status.Timeout {
		t.Fatalf("a silent peer: %v, want timeout", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the idle timeout took %v", took)
	}
}

// A peer dripping a frame one byte at a time is cut off by the frame
// timeout, while one sending at a normal pace is not.
func TestFrameTimeout(t *testing.T) {
	frame := goodFrame(t, push(1, "a body of some length"))
	tests := []struct {
		name  string
		pause time.Duration
		want  status.Code
	}{
		{"dripped", 20 * time.Millisecond, status.Timeout},
		{"whole", 0, status.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			r := newSocket(t, b, socket.Config{FrameTimeout: 100 * time.Millisecond})
			go func() {
				if tt.pause == 0 {
					a.Write(frame)
					return
				}
				for _, c := range frame {
					if _, err := a.Write([]byte{c}); err != nil {
						return
					}
					time.Sleep(tt.pause) // the drip itself, not a wait for a result
				}
			}()
			err := r.ReadMessage(socket.AcquireMessage())
			if got := status.From(err, 0, "").Code(); got != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// The idle timeout does not cut a frame short, and a deadline the caller
// set still applies.
func TestDeadlinesCompose(t *testing.T) {
	a, b := tcpPair(t)
	r := newSocket(t, b, socket.Config{IdleTimeout: time.Hour})
	r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if err := r.ReadMessage(socket.AcquireMessage()); status.From(err, 0, "").Code() != status.Timeout {
		t.Fatalf("caller's deadline ignored: %v", err)
	}
	_ = a
}

func TestWriteLimit(t *testing.T) {
	a, _ := net.Pipe()
	w := newSocket(t, a, socket.Config{WriteLimit: 100})
	err := w.WriteMessage(context.Background(), push(1, string(make([]byte, 200))))
	if status.From(err, 0, "").Code() != status.TooLarge {
		t.Fatalf("got %v, want too large", err)
	}
}
