// Package tptest holds helpers for the tests of packages built on tp, such
// as the plugins: peers closed when the test ends, a server on a loopback
// port, and a relay that can go silent like a dead network.
package tptest

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Quiet discards logs.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// NewPeer returns a peer with a quiet logger (unless cfg has one), closed
// when the test ends.
func NewPeer(t testing.TB, cfg tp.PeerConfig, ps ...tp.Plugin) *tp.Peer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = Quiet
	}
	p, err := tp.NewPeer(cfg, ps...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Serve serves srv on an ephemeral loopback port and returns its address.
func Serve(t testing.TB, srv *tp.Peer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// Dial dials addr from cli, failing the test if it cannot.
func Dial(t testing.TB, cli *tp.Peer, addr string) *tp.Session {
	t.Helper()
	s, err := cli.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitFor polls cond until it holds, failing the test after 5 seconds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Relay forwards TCP connections to a target until Freeze, after which it
// holds every byte, like a network that went dead without a reset.
type Relay struct {
	Addr string // dial this instead of the target

	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	seen   []byte // every byte forwarded, both ways
	thaw   chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewRelay starts a relay to target, stopped when the test ends.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), ln: ln, thaw: make(chan struct{})}
	r.wg.Add(1)
	go r.accept(target)
	t.Cleanup(r.close)
	return r
}

// Seen returns every byte the relay forwarded so far, in both directions:
// what an eavesdropper on the network would have.
func (r *Relay) Seen() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.seen...)
}

// Freeze stops forwarding in both directions; connections stay open.
func (r *Relay) Freeze() {
	r.mu.Lock()
	r.frozen = true
	r.mu.Unlock()
}

func (r *Relay) accept(target string) {
	defer r.wg.Done()
	for {
		a, err := r.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", target)
		if err != nil {
			a.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, a, b)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.copy(a, b)
		go r.copy(b, a)
	}
}

func (r *Relay) copy(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		r.mu.Lock()
		frozen := r.frozen
		if !frozen {
			r.seen = append(r.seen, buf[:n]...)
		}
		r.mu.Unlock()
		if frozen {
			<-r.thaw // hold the bytes until the test ends
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (r *Relay) close() {
	r.ln.Close()
	close(r.thaw)
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// NewFrameRelay forwards TCP connections to target frame by frame (the
// default rawproto framing: a 4-byte length, then the frame), passing
// each through edit, which returns what to send in its place: nil drops
// the frame, two copies duplicate it. toTarget says the frame's way. It
// is the man in the middle of attack tests: it tampers, records and
// replays. It stops when the test ends, and returns the address to dial.
func NewFrameRelay(t testing.TB, target string, edit func(toTarget bool, frame []byte) [][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	pipe := func(dst, src net.Conn, toTarget bool) {
		defer wg.Done()
		defer dst.Close()
		for {
			head := make([]byte, 4)
			if _, err := io.ReadFull(src, head); err != nil {
				return
			}
			frame := make([]byte, 4+int(binary.BigEndian.Uint32(head)))
			copy(frame, head)
			if _, err := io.ReadFull(src, frame[4:]); err != nil {
				return
			}
			for _, f := range edit(toTarget, frame) {
				if _, err := dst.Write(f); err != nil {
					return
				}
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, a, b)
			mu.Unlock()
			wg.Add(2)
			go pipe(b, a, true)
			go pipe(a, b, false)
		}
	}()
	return ln.Addr().String()
}
