package tp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/conformance"
)

// selfSigned returns a server config and a client config that trusts it.
var selfSigned = conformance.SelfSigned

func TestTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	_, _, sess := pair(t, tp.PeerConfig{TLS: srvTLS}, tp.PeerConfig{TLS: cliTLS}, func(srv *tp.Peer) { srv.RouteCallFunc(Ping) })
	var n int
	if err := sess.Call(context.Background(), "/ping", 1, &n).Err(); err != nil || n != 2 {
		t.Fatalf("over TLS: %d, %v", n, err)
	}
	// A peer with a TLS config but no certificate cannot serve: it says so
	// at Serve, rather than failing every handshake.
	noCert := newPeer(t, tp.PeerConfig{TLS: cliTLS})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := noCert.Serve(ln); tp.CodeOf(err) != tp.CodeInvalidArgument || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Serve with a certificate-less TLS config: %v", err)
	}
	// A client that does not trust the server fails to dial.
	plain := newPeer(t, tp.PeerConfig{TLS: &tls.Config{}})
	if _, st := plain.Dial(context.Background(), sess.RemoteAddr().String()); tp.CodeOf(st) != tp.CodeDialFailed {
		t.Fatalf("untrusted server: %v", st)
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tp.sock")
	srv := newPeer(t, tp.PeerConfig{Network: "unix", ListenAddr: path})
	srv.RouteCallFunc(Ping)
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	cli := newPeer(t, tp.PeerConfig{Network: "unix"})
	var sess *tp.Session
	waitFor(t, "the unix listener", func() bool {
		var err error
		sess, err = cli.Dial(context.Background(), path)
		return err == nil
	})
	var n int
	if err := sess.Call(context.Background(), "/ping", 1, &n).Err(); err != nil || n != 2 {
		t.Fatalf("over unix: %d, %v", n, err)
	}
	srv.Close()
	if st := <-done; st != nil {
		t.Fatalf("ListenAndServe after Close: %v", st)
	}
}

func TestServeConnPipe(t *testing.T) {
	a, b := net.Pipe()
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	cli := newPeer(t, tp.PeerConfig{})
	if _, st := srv.ServeConn(a); st != nil {
		t.Fatal(st)
	}
	sess, st := cli.ServeConn(b) // either end may be handed a conn
	if st != nil {
		t.Fatal(st)
	}
	var n int
	if err := sess.Call(context.Background(), "/ping", 41, &n).Err(); err != nil || n != 42 {
		t.Fatalf("over a pipe: %d, %v", n, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func Sleepy(ctx tp.CallCtx, arg *int) (int, *tp.Status) {
	time.Sleep(time.Duration(*arg) * time.Millisecond)
	return *arg, nil
}

func TestLogging(t *testing.T) {
	var srvLog, cliLog syncBuffer
	cfg := func(b *syncBuffer) tp.PeerConfig {
		return tp.PeerConfig{PrintDetail: true, SlowCallThreshold: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(b, nil))}
	}
	_, _, sess := pair(t, cfg(&srvLog), cfg(&cliLog), func(srv *tp.Peer) { srv.RouteCallFunc(Sleepy) })
	var n int
	cmd := sess.Call(context.Background(), "/sleepy", 30, &n, tp.WithSetMeta("trace", "t1"))
	if cmd.Err() != nil || cmd.CostTime() < 30*time.Millisecond {
		t.Fatalf("cost %v, %v", cmd.CostTime(), cmd.Err())
	}
	for _, want := range []string{"dir=send type=CALL service_method=/sleepy", "meta.trace=t1", "body=30", "dir=recv type=REPLY", "slow call"} {
		if !strings.Contains(cliLog.String(), want) {
			t.Errorf("client log lacks %q:\n%s", want, cliLog.String())
		}
	}
	// The server logs its reply after sending it.
	for _, want := range []string{"dir=recv type=CALL service_method=/sleepy", "dir=send type=REPLY", "slow handler"} {
		waitFor(t, "server log line "+want, func() bool { return strings.Contains(srvLog.String(), want) })
	}
	// Arguments and results are logged by value, not as addresses.
	if log := srvLog.String(); strings.Contains(log, "body=0x") || !strings.Contains(log, "body=30") {
		t.Errorf("server log shows a body by its address, or not at all:\n%s", log)
	}
}

// A redial that reaches something that is not a tp peer (a listener that
// accepts and never speaks) is a failed attempt: calls made meanwhile wait
// for a real peer, and succeed once one serves again.
func TestRedialWaitsForHello(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go srv.Serve(ln)
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 10 * time.Millisecond, HandshakeTimeout: 200 * time.Millisecond})
	sess := dial(t, cli, addr)
	srv.Close()

	// A black hole on the address: it accepts, and says nothing.
	hole, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	held.Add(1)
	go func() {
		defer held.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var n int
		done <- sess.Call(ctx, "/ping", 1, &n).Err()
	}()
	time.Sleep(500 * time.Millisecond) // redials reach the black hole meanwhile
	select {
	case err := <-done:
		t.Fatalf("a call during the black hole ended: %v", err)
	default:
	}
	hole.Close()
	held.Wait()
	srv2 := newPeer(t, tp.PeerConfig{})
	srv2.RouteCallFunc(Ping)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv2.Serve(ln2)
	if err := <-done; err != nil {
		t.Fatalf("the call once a peer serves again: %v", err)
	}
}
