package tp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// holds is a CALL handler that waits, for each argument, until the test
// releases it, then answers ten times the argument.
type holds struct {
	mu        sync.Mutex
	gates     map[int]chan struct{}
	entered   chan int
	closedAll bool // releaseAll ran: later gates start open
}

func newHolds() *holds { return &holds{gates: map[int]chan struct{}{}, entered: make(chan int, 100)} }

func (h *holds) gate(n int) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.gates[n]
	if !ok {
		g = make(chan struct{})
		if h.closedAll {
			close(g)
		}
		h.gates[n] = g
	}
	return g
}

func (h *holds) release(n int) {
	g := h.gate(n)
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-g:
	default:
		close(g)
	}
}

// releaseAll lets every handler go, so a test that fails early does not
// leave its peers' Close waiting for them. Register it with t.Cleanup
// after the peers, so it runs before their Close.
func (h *holds) releaseAll() {
	h.mu.Lock()
	var ns []int
	for n := range h.gates {
		ns = append(ns, n)
	}
	h.mu.Unlock()
	for _, n := range ns {
		h.release(n)
	}
	h.mu.Lock()
	h.closedAll = true
	h.mu.Unlock()
}

func (h *holds) handle(ctx tp.CallCtx, arg *int) (int, error) {
	h.entered <- *arg
	<-h.gate(*arg)
	return *arg * 10, nil
}

func (h *holds) route(p *tp.Peer) { tp.HandleCall(p.Router(), "/hold", h.handle) }

// waitDone waits for c's outcome, failing the test after 5 seconds.
func waitDone(t testing.TB, c *tp.CallCmd, what string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no outcome after 5s", what)
	}
}

// A handler that answers after its connection broke and was redialed must
// not answer a call made on the new connection, even one with the same
// seq: its reply goes out on the connection its call came on, or nowhere.
func TestLateReplyAfterRedial(t *testing.T) {
	accepted := make(chan *tp.Session, 4)
	srv := newPeer(t, tp.PeerConfig{}, acceptHook(func(s *tp.Session) error {
		accepted <- s
		return nil
	}))
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: time.Millisecond})
	h := newHolds()
	h.route(cli)
	dial(t, cli, addr)
	t.Cleanup(h.releaseAll)
	first := <-accepted

	var stale int
	c1 := first.AsyncCall(context.Background(), "/hold", 1, &stale, nil) // seq 1 on the first connection
	if n := <-h.entered; n != 1 {
		t.Fatalf("handler entered with %d", n)
	}
	first.Close() // the connection breaks; the client redials
	waitDone(t, c1, "the first call")
	if c1.Err() == nil {
		t.Fatal("a call whose connection broke succeeded")
	}
	second := <-accepted

	var fresh int
	c2 := second.AsyncCall(context.Background(), "/hold", 2, &fresh, nil) // seq 1 again, on the new connection
	if n := <-h.entered; n != 2 {
		t.Fatalf("handler entered with %d", n)
	}
	h.release(1) // the first handler answers, late
	waitFor(t, "the late handler to finish", func() bool { running, _ := cli.PoolUsage(); return running == 1 })
	select {
	case <-c2.Done():
		t.Fatalf("the late reply of the broken connection completed a call on the new one: %d, %v", fresh, c2.Err())
	default:
	}
	h.release(2)
	waitDone(t, c2, "the second call")
	if err := c2.Err(); err != nil || fresh != 20 {
		t.Fatalf("the call on the new connection: %d, %v; want 20", fresh, err)
	}
}

// A reply that comes after its call timed out completes nothing else.
func TestLateReplyAfterTimeout(t *testing.T) {
	h := newHolds()
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		h.route(srv)
		srv.RouteCallFunc(Ping)
	})
	t.Cleanup(h.releaseAll)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var late int
	c1 := sess.AsyncCall(ctx, "/hold", 1, &late, nil)
	<-h.entered
	waitDone(t, c1, "the first call")
	if tp.CodeOf(c1.Err()) != tp.CodeTimeout {
		t.Fatalf("held call: %v, want timeout", c1.Err())
	}
	var other int
	c2 := sess.AsyncCall(context.Background(), "/hold", 2, &other, nil)
	<-h.entered
	h.release(1)
	waitFor(t, "the late handler to finish", func() bool { running, _ := srv.PoolUsage(); return running == 1 })
	// The late reply went out before this ping's reply: once the ping is
	// answered, the client has read it.
	if err := sess.Call(context.Background(), "/ping", 1, nil).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c2.Done():
		t.Fatalf("a late reply completed another call: %d, %v", other, c2.Err())
	default:
	}
	if late != 0 {
		t.Fatalf("a timed-out call's result was written after it returned: %d", late)
	}
	h.release(2)
	waitDone(t, c2, "the second call")
	if err := c2.Err(); err != nil || other != 20 {
		t.Fatalf("second call: %d, %v", other, err)
	}
}

// Closing a session ends the calls waiting on it at once.
func TestSessionCloseFailsWaitingCalls(t *testing.T) {
	h := newHolds()
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, h.route)
	t.Cleanup(h.releaseAll)
	const n = 5
	calls := make([]*tp.CallCmd, n)
	for i := range calls {
		calls[i] = sess.AsyncCall(context.Background(), "/hold", i, nil, nil)
		<-h.entered
	}
	sess.Close()
	for i, c := range calls {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d still waits after its session closed", i)
		}
		if tp.CodeOf(c.Err()) != tp.CodeConnClosed {
			t.Fatalf("call %d: %v, want connection closed", i, c.Err())
		}
	}
	for i := range n {
		h.release(i)
	}
}

// Remember keeps its handler context for a goroutine that outlives the
// handler, as a careless handler would.
type remember struct {
	kept chan tp.CallCtx
}

func (r *remember) handle(ctx tp.CallCtx, arg *string) (string, error) {
	if *arg == "keep" {
		r.kept <- ctx
	}
	return ctx.PeekMeta("who"), nil
}

// A handler context kept past its handler never acts for another message:
// it points at its own caller, its meta is gone, its Context has ended.
func TestHandlerContextAfterReturn(t *testing.T) {
	r := &remember{kept: make(chan tp.CallCtx, 1)}
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/remember", r.handle)
	addr := serve(t, srv)

	type client struct {
		sess *tp.Session
		got  chan string
	}
	clients := make([]client, 2)
	for i := range clients {
		p := newPeer(t, tp.PeerConfig{})
		got := make(chan string, 10)
		tp.HandlePush(p.Router(), "/note", func(_ tp.PushCtx, s *string) error {
			got <- *s
			return nil
		})
		clients[i] = client{dial(t, p, addr), got}
	}
	a, b := clients[0], clients[1]
	if err := a.sess.Call(context.Background(), "/remember", "keep", nil, tp.WithSetMeta("who", "a")).Err(); err != nil {
		t.Fatal(err)
	}
	kept := <-r.kept
	// Other messages come and go, from the other client.
	for range 200 {
		var who string
		if err := b.sess.Call(context.Background(), "/remember", "pass", &who, tp.WithSetMeta("who", "b")).Err(); err != nil || who != "b" {
			t.Fatalf("b's call: %q, %v", who, err)
		}
	}
	if got := kept.PeekMeta("who"); got == "b" {
		t.Fatal("a kept context reads another message's meta")
	}
	if kept.ServiceMethod() != "/remember" {
		t.Fatalf("a kept context's service method: %q", kept.ServiceMethod())
	}
	select {
	case <-kept.Context().Done():
	default:
		t.Fatal("a kept context's Context has not ended with its handler")
	}
	kept.SetMeta("late", "x") // too late for the reply: must not touch another's
	// A push through the kept context goes to its own caller.
	if err := kept.Session().Push(context.Background(), "/note", "for a"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-a.got:
		if s != "for a" {
			t.Fatalf("a got %q", s)
		}
	case s := <-b.got:
		t.Fatalf("a push through a's kept context reached b: %q", s)
	case <-time.After(5 * time.Second):
		t.Fatal("the push reached nobody")
	}
}

// A handler's goroutines may share its context while it runs.
func TestHandlerContextSharedByGoroutines(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/fan", func(ctx tp.CallCtx, arg *int) (int, error) {
		var wg sync.WaitGroup
		for i := range *arg {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = ctx.Context()
				_ = ctx.PeekMeta("k")
				_ = ctx.InputMeta().Len()
				ctx.AddMeta("from", string(rune('a'+i)))
			}()
		}
		wg.Wait()
		return *arg, nil
	})
	addr := serve(t, srv)
	sess := dial(t, newPeer(t, tp.PeerConfig{}), addr)
	for range 20 {
		c := sess.Call(context.Background(), "/fan", 8, nil, tp.WithSetMeta("k", "v"), tp.WithContextAge(time.Minute))
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
		if n := len(c.InputMeta().Values("from")); n != 8 {
			t.Fatalf("reply meta from 8 goroutines: %d values", n)
		}
	}
}

// replyWatcher reads each reply in its write hooks.
type replyWatcher struct{}

func (replyWatcher) Name() string                       { return "reply-watcher" }
func (replyWatcher) PreWriteReply(c tp.WriteCtx) error  { _ = c.Output().Meta.Len(); return nil }
func (replyWatcher) PostWriteReply(c tp.WriteCtx) error { _ = c.Output().Meta.Get("k"); return nil }

// A goroutine a handler left behind may keep setting meta while the reply
// is written and its hooks read it: it changes nothing, and races nothing.
func TestSetMetaWhileReplyIsWritten(t *testing.T) {
	done := make(chan struct{})
	srv := newPeer(t, tp.PeerConfig{}, replyWatcher{})
	tp.HandleCall(srv.Router(), "/leave", func(ctx tp.CallCtx, _ *int) (int, error) {
		go func() {
			defer close(done)
			for range 2000 {
				ctx.SetMeta("k", "late")
			}
		}()
		return 1, nil
	})
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	c := sess.Call(context.Background(), "/leave", 1, nil)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	<-done
}
