package socket_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
)

// countConn counts Write calls.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkConcurrentWrite writes 600-byte messages on one socket from many
// goroutines over TCP loopback while the other end reads them, and reports
// how many write syscalls each message cost.
func BenchmarkConcurrentWrite(b *testing.B) {
	for _, par := range []int{1, 16, 128} {
		b.Run("goroutines="+itoa(par*2), func(b *testing.B) { // RunParallel runs par*GOMAXPROCS
			a, c := tcpPair(b)
			cc := &countConn{Conn: a}
			w := newSocket(b, cc, socket.Config{})
			r := newSocket(b, c, socket.Config{})
			done := make(chan int)
			go func() {
				m := socket.AcquireMessage()
				n := 0
				for r.ReadMessage(m) == nil {
					m.Reset()
					n++
				}
				done <- n
			}()
			body := make([]byte, 600)
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				m := &socket.Message{Type: socket.TypePush, ServiceMethod: "/bench", BodyCodec: codec.PlainID, Body: body}
				for pb.Next() {
					if err := w.WriteMessage(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			w.Close()
			if n := <-done; n != b.N {
				b.Fatalf("read %d of %d messages", n, b.N)
			}
			b.ReportMetric(float64(cc.writes.Load())/float64(b.N), "writes/msg")
		})
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}
