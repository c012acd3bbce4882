package tp_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Broadcast reaches every session, or those the filter keeps, and reports
// each failure with its session.
func TestBroadcast(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	addr := serve(t, srv)
	const n = 4
	got := make(chan string, 2*n)
	for range n {
		cli := newPeer(t, tp.PeerConfig{})
		tp.HandlePush(cli.Router(), "/news", func(ctx tp.PushCtx, s *string) error {
			got <- ctx.Session().LocalAddr().String() + " " + *s
			return nil
		})
		dial(t, cli, addr)
	}
	waitFor(t, "every session", func() bool { return srv.CountSession() == n })
	if err := srv.Broadcast(context.Background(), "/news", "all", nil); err != nil {
		t.Fatal(err)
	}
	for range n {
		if s := <-got; !strings.HasSuffix(s, " all") {
			t.Fatalf("got %q", s)
		}
	}
	var kept atomic.Int64
	odd := func(s *tp.Session) bool { return kept.Add(1)%2 == 0 }
	if err := srv.Broadcast(context.Background(), "/news", "some", odd); err != nil {
		t.Fatal(err)
	}
	for range n / 2 {
		<-got
	}
	select {
	case s := <-got:
		t.Fatalf("a push the filter left out arrived: %q", s)
	case <-time.After(100 * time.Millisecond):
	}
	// Pushes that cannot be sent are reported, each naming its session.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := srv.Broadcast(ctx, "/news", "never", nil)
	if tp.CodeOf(err) != tp.CodeCanceled || strings.Count(err.Error(), "session 127.0.0.1:") != n {
		t.Fatalf("a broadcast with a canceled context: %v", err)
	}
}

// Session.Err says why a session ended.
func TestSessionErr(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})

	local := dial(t, cli, addr)
	if local.Err() != nil {
		t.Fatalf("an open session's Err: %v", local.Err())
	}
	local.Close()
	<-local.Done()
	if tp.CodeOf(local.Err()) != tp.CodeConnClosed {
		t.Fatalf("a session closed here: %v", local.Err())
	}

	remote := dial(t, cli, addr)
	waitFor(t, "the server's session", func() bool { return srv.CountSession() == 1 })
	for s := range srv.Sessions() {
		s.Close()
	}
	select {
	case <-remote.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session the server closed is still open")
	}
	if tp.CodeOf(remote.Err()) != tp.CodeConnClosed {
		t.Fatalf("a session the peer closed: %v", remote.Err())
	}
}

// tp.Call returns the typed result.
func TestTypedCall(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/arith/sum", func(_ tp.CallCtx, xs *[]int) (int, error) {
		s := 0
		for _, x := range *xs {
			s += x
		}
		return s, nil
	})
	tp.HandleCall(srv.Router(), "/arith/fail", func(tp.CallCtx, *int) (int, error) {
		return 0, errors.New("no luck")
	})
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	sum, err := tp.Call[int](context.Background(), sess, "/arith/sum", []int{1, 2, 3})
	if err != nil || sum != 6 {
		t.Fatalf("sum: %d, %v", sum, err)
	}
	_, err = tp.Call[int](context.Background(), sess, "/arith/fail", 1)
	if tp.CodeOf(err) != tp.CodeInternal || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("a handler's plain error: %v, want internal carrying its text", err)
	}
}

// Addr reports where ListenAndServe listens; a custom Dialer carries the
// first dial and every redial (here it resolves a name, as a service
// registry would).
func TestAddrAndDialer(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{ListenAddr: "127.0.0.1:0"})
	srv.RouteCallFunc(Ping)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	waitFor(t, "the listener", func() bool { return srv.Addr() != nil })
	addr := srv.Addr().String()

	var dials atomic.Int64
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: time.Millisecond,
		Dialer: func(ctx context.Context, network, name string) (net.Conn, error) {
			if name != "backend" {
				return nil, errors.New("unknown service " + name)
			}
			dials.Add(1)
			return new(net.Dialer).DialContext(ctx, network, addr)
		}})
	sess := dial(t, cli, "backend")
	for s := range srv.Sessions() {
		s.Close() // the client redials, through its dialer
	}
	waitFor(t, "the redial", func() bool { return dials.Load() == 2 && sess.Health() })
	if n, err := tp.Call[int](context.Background(), sess, "/ping", 1); err != nil || n != 2 {
		t.Fatalf("a call after the redial: %d, %v", n, err)
	}
	// The dialer's error is Dial's, once the retries RedialTimes allows end
	// with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := cli.Dial(ctx, "elsewhere"); tp.CodeOf(err) != tp.CodeDialFailed || !strings.Contains(err.Error(), "unknown service") {
		t.Fatalf("a name the dialer refuses: %v", err)
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe after Close: %v", err)
	}
}

// With RedialTimes, a first dial to a peer that is not up yet is tried
// again until it is (within the dial's context).
func TestFirstDialRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens here, for now
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		_, err := cli.Dial(ctx, addr)
		dialed <- err
	}()
	select {
	case err := <-dialed:
		t.Fatalf("Dial returned before anything listened: %v", err)
	case <-time.After(100 * time.Millisecond): // some attempts fail meanwhile
	}
	srv := newPeer(t, tp.PeerConfig{})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	go srv.Serve(ln)
	if err := <-dialed; err != nil {
		t.Fatalf("Dial once the peer is up: %v", err)
	}
	// Without RedialTimes, nobody there is Dial's error at once.
	if _, err := newPeer(t, tp.PeerConfig{}).Dial(ctx, "127.0.0.1:1"); tp.CodeOf(err) != tp.CodeDialFailed {
		t.Fatalf("a dial to nobody: %v", err)
	}
}
