package tp_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
)

// acceptHook runs fn in PostAccept.
type acceptHook func(*tp.Session) error

func (acceptHook) Name() string                     { return "accept-hook" }
func (h acceptHook) PostAccept(s *tp.Session) error { return h(s) }

// lifeLog counts, per session, the PostDial/PostAccept and PostDisconnect
// hooks it saw.
type lifeLog struct {
	mu          sync.Mutex
	started     map[*tp.Session]int
	ended       map[*tp.Session]int
	onAccept    func(*tp.Session) error
	endedSignal chan *tp.Session
}

func newLifeLog() *lifeLog {
	return &lifeLog{started: map[*tp.Session]int{}, ended: map[*tp.Session]int{}, endedSignal: make(chan *tp.Session, 1000)}
}

func (*lifeLog) Name() string { return "life" }

func (l *lifeLog) PostDial(s *tp.Session, redial bool) error {
	if !redial {
		l.mu.Lock()
		l.started[s]++
		l.mu.Unlock()
	}
	return nil
}

func (l *lifeLog) PostAccept(s *tp.Session) error {
	l.mu.Lock()
	l.started[s]++
	l.mu.Unlock()
	if l.onAccept != nil {
		return l.onAccept(s)
	}
	return nil
}

func (l *lifeLog) PostDisconnect(s *tp.Session) {
	l.mu.Lock()
	l.ended[s]++
	l.mu.Unlock()
	l.endedSignal <- s
}

// check fails unless every session seen started once and ended once.
func (l *lifeLog) check(t *testing.T, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d sessions to end", want), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.ended) >= want
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.started) != want {
		t.Errorf("%d sessions started, want %d", len(l.started), want)
	}
	for s, n := range l.started {
		if n != 1 || l.ended[s] != 1 {
			t.Errorf("session %q: started %d times, ended %d times; want once each", s.ID(), n, l.ended[s])
		}
	}
	for s := range l.ended {
		if l.started[s] == 0 {
			t.Errorf("session %q ended without starting", s.ID())
		}
	}
}

// hubIDs is every ID Sessions yields.
func hubIDs(p *tp.Peer) []string {
	var ids []string
	for s := range p.Sessions() {
		ids = append(ids, s.ID())
	}
	return ids
}

// A hook that names a session leaves exactly one entry, under that name,
// which goes when the session does.
func TestHubRenameInHook(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error {
		s.SetID("user-42")
		return nil
	}))
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	sess := dial(t, cli, addr)
	if err := sess.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	got, ok := srv.Session("user-42")
	if !ok || got.ID() != "user-42" {
		t.Fatalf("Session(user-42): found %v", ok)
	}
	if ids := hubIDs(srv); srv.CountSession() != 1 || len(ids) != 1 || ids[0] != "user-42" {
		t.Fatalf("hub holds %d sessions, Sessions yields %q; want one, user-42", srv.CountSession(), ids)
	}
	sess.Close()
	waitFor(t, "the server to drop the session", func() bool { return srv.CountSession() == 0 })
	if _, ok := srv.Session("user-42"); ok || len(hubIDs(srv)) != 0 {
		t.Fatalf("the session left, and the hub still has it: %q", hubIDs(srv))
	}
}

// A session a hook names and then refuses is never in the hub, and does
// not displace a live session of the same name.
func TestHubRenameThenRefuse(t *testing.T) {
	first := true
	var mu sync.Mutex
	srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error {
		s.SetID("user-42")
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return nil
		}
		return tp.NewStatus(tp.CodeUnauthorized, "go away", nil)
	}))
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	kept := dial(t, cli, addr)
	if err := kept.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	keptSrv, _ := srv.Session("user-42")
	if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeUnauthorized {
		t.Fatalf("dialing a session the hook refuses: %v, want the hook's status", err)
	}
	if got, ok := srv.Session("user-42"); !ok || got != keptSrv || srv.CountSession() != 1 {
		t.Fatalf("after a refused namesake: found %v, count %d; want the first session alone", ok, srv.CountSession())
	}
	if err := kept.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatalf("the first session after its namesake was refused: %v", err)
	}
}

// SetID on a closed session does not bring it back.
func TestHubRenameClosed(t *testing.T) {
	got := make(chan *tp.Session, 1)
	srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error {
		got <- s
		return nil
	}))
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	dial(t, cli, addr).Close()
	s := <-got
	<-s.Done()
	for _, rename := range []func(){
		func() { s.SetID("ghost") },
		func() {
			for c := range cli.Sessions() {
				c.SetID("ghost")
			}
		},
	} {
		rename()
		if _, ok := srv.Session("ghost"); ok || srv.CountSession() != 0 {
			t.Fatalf("a closed session renamed is back in the hub (count %d)", srv.CountSession())
		}
	}
	if s.ID() != "ghost" {
		t.Fatalf("ID after SetID: %q", s.ID())
	}
}

// MaxSessions counts live sessions only, however a hook names them.
func TestMaxSessionsCountsLiveOnly(t *testing.T) {
	tests := []struct {
		name string
		id   func(i int) string
	}{
		{"same name", func(int) string { return "user" }},
		{"one name each", func(i int) string { return fmt.Sprint("user-", i) }},
		{"default names", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := newPeer(t, tp.PeerConfig{MaxSessions: 2}, acceptHook(func(s *tp.Session) error {
				mu.Lock()
				defer mu.Unlock()
				if tt.id != nil {
					s.SetID(tt.id(n))
				}
				n++
				return nil
			}))
			srv.RouteCallFunc(Ping)
			addr := serve(t, srv)
			cli := newPeer(t, tp.PeerConfig{})
			for i := range 8 {
				sess := dial(t, cli, addr)
				if err := sess.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
					t.Fatalf("client %d, one at a time: %v", i, err)
				}
				if c := srv.CountSession(); c != 1 {
					t.Fatalf("client %d connected: server counts %d sessions", i, c)
				}
				sess.Close()
				waitFor(t, "the server to count the client gone", func() bool { return srv.CountSession() == 0 })
			}
		})
	}
}

// Sessions whose addresses say nothing apart are each in the hub, on both
// ends, and Close ends them all within its timeout.
func TestHubIndistinctAddresses(t *testing.T) {
	const n = 5
	t.Run("unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tp.sock")
		srv := newPeer(t, tp.PeerConfig{Network: "unix", ShutdownTimeout: time.Second})
		srv.RouteCallFunc(Ping)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		cli := newPeer(t, tp.PeerConfig{Network: "unix"})
		for range n {
			sess := dial(t, cli, path)
			if err := sess.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
				t.Fatal(err)
			}
		}
		checkIndistinct(t, srv, cli, n)
	})
	t.Run("pipe", func(t *testing.T) {
		srv := newPeer(t, tp.PeerConfig{ShutdownTimeout: time.Second})
		srv.RouteCallFunc(Ping)
		cli := newPeer(t, tp.PeerConfig{})
		for range n {
			a, b := net.Pipe()
			if _, st := srv.ServeConn(a); st != nil {
				t.Fatal(st)
			}
			sess, st := cli.ServeConn(b)
			if st != nil {
				t.Fatal(st)
			}
			if err := sess.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
				t.Fatal(err)
			}
		}
		checkIndistinct(t, srv, cli, n)
	})
}

func checkIndistinct(t *testing.T, srv, cli *tp.Peer, n int) {
	t.Helper()
	waitFor(t, "every session in both hubs", func() bool { return srv.CountSession() == n && cli.CountSession() == n })
	for _, p := range []*tp.Peer{srv, cli} {
		ids := hubIDs(p)
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("two sessions share the ID %q: %q", id, ids)
			}
			seen[id] = true
			if s, ok := p.Session(id); !ok || s.ID() != id {
				t.Fatalf("Session(%q) does not find the session Sessions yields", id)
			}
		}
		if len(ids) != n {
			t.Fatalf("Sessions yields %d sessions, want %d", len(ids), n)
		}
	}
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v with a 1s shutdown timeout", took)
	}
	waitFor(t, "the other end's sessions to end", func() bool { return cli.CountSession() == 0 })
}

// Every session a PostDial or PostAccept hook saw gets exactly one
// PostDisconnect, however it ends.
func TestSessionHooksPair(t *testing.T) {
	t.Run("served, then closed by either end", func(t *testing.T) {
		srvLog, cliLog := newLifeLog(), newLifeLog()
		srv := newPeer(t, tp.PeerConfig{}, srvLog)
		srv.RouteCallFunc(Ping)
		addr := serve(t, srv)
		cli := newPeer(t, tp.PeerConfig{}, cliLog)
		dial(t, cli, addr).Close()
		b := dial(t, cli, addr)
		waitFor(t, "two accepted", func() bool { srvLog.mu.Lock(); defer srvLog.mu.Unlock(); return len(srvLog.started) == 2 })
		for s := range srv.Sessions() {
			s.Close()
		}
		<-b.Done()
		srvLog.check(t, 2)
		cliLog.check(t, 2)
	})
	t.Run("refused by a hook", func(t *testing.T) {
		log := newLifeLog()
		log.onAccept = func(*tp.Session) error { return tp.NewStatus(tp.CodeUnauthorized, "no", nil) }
		srv := newPeer(t, tp.PeerConfig{}, log)
		addr := serve(t, srv)
		cli := newPeer(t, tp.PeerConfig{})
		for range 3 {
			if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeUnauthorized {
				t.Fatalf("Dial: %v, want the hook's refusal", err)
			}
		}
		log.check(t, 3)
	})
	t.Run("refused by the session cap", func(t *testing.T) {
		log := newLifeLog()
		srv := newPeer(t, tp.PeerConfig{MaxSessions: 1}, log)
		addr := serve(t, srv)
		cli := newPeer(t, tp.PeerConfig{})
		a := dial(t, cli, addr)
		waitFor(t, "the first session", func() bool { return srv.CountSession() == 1 })
		for range 3 {
			if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeOverloaded {
				t.Fatalf("Dial past the cap: %v, want overloaded", err)
			}
		}
		for range 3 {
			<-log.endedSignal
		}
		a.Close()
		log.check(t, 4)
	})
	t.Run("peer closed during the hook", func(t *testing.T) {
		log := newLifeLog()
		entered := make(chan struct{}, 1)
		log.onAccept = func(s *tp.Session) error {
			entered <- struct{}{}
			// The client sends no handshake: this waits until Close cuts it.
			return s.ReadHandshake(new(socket.Message), 0)
		}
		srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet, ShutdownTimeout: time.Second}, log)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		cli := newPeer(t, tp.PeerConfig{})
		dialed := make(chan error, 1)
		go func() {
			_, err := cli.Dial(context.Background(), ln.Addr().String())
			dialed <- err
		}()
		<-entered
		start := time.Now()
		srv.Close()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Close took %v with a session stuck in its hook", took)
		}
		log.check(t, 1)
		if err := <-dialed; err == nil {
			t.Fatal("Dial succeeded to a peer that closed before serving")
		}
	})
	t.Run("redialed", func(t *testing.T) {
		cliLog := newLifeLog()
		srv := newPeer(t, tp.PeerConfig{})
		srv.RouteCallFunc(Ping)
		addr := serve(t, srv)
		cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: time.Millisecond}, cliLog)
		sess := dial(t, cli, addr)
		for range 3 { // cut the connection under it; it redials
			for s := range srv.Sessions() {
				s.Close()
			}
			waitFor(t, "the redial", func() bool {
				return sess.Call(context.Background(), "/ping", 1, nil).Err() == nil
			})
		}
		sess.Close()
		cliLog.check(t, 1)
	})
}
