package kcp_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/conformance"
	"github.com/seed-a9a850dd/tp/plugin/heartbeat"
	"github.com/seed-a9a850dd/tp/transport/kcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent(),
		// kcp-go's process-wide timer scheduler, started on first use.
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).sched"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).prepend"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.postProcessWorker"))
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Transport{
		Listen: func(addr string) (net.Listener, error) {
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			return kcp.Listen(addr, kcp.Config{})
		},
		Dialer: kcp.Dialer(kcp.Config{}),
		Addr:   func(ln net.Listener) string { return ln.Addr().String() },
		// KCP does not see a closed connection: the heartbeat does.
		Plugins: func() []tp.Plugin {
			return []tp.Plugin{heartbeat.New(heartbeat.Config{Interval: 100 * time.Millisecond})}
		},
	})
}

// Close returns a blocked Accept at once, while sessions accepted before
// keep the socket open until they close.
func TestCloseUnblocksAccept(t *testing.T) {
	ln, err := kcp.Listen("127.0.0.1:0", kcp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	d := kcp.Dialer(kcp.Config{})
	c, err := d(context.Background(), "udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x")) // KCP's session starts with its first packet
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
	// The accepted session still works until it closes.
	if _, err := c.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	accepted.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(accepted, buf); err != nil || string(buf) != "xy" {
		t.Fatalf("the accepted session after Close: %q %v", buf, err)
	}
	accepted.Close()
	c.Close()
}
