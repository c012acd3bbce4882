package tp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// recorder implements every hook and records which ran; deny names a hook
// that refuses, with CodeUnauthorized.
type recorder struct {
	name string
	deny string
	mu   sync.Mutex
	seen []string
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) hit(hook string) error {
	r.mu.Lock()
	r.seen = append(r.seen, hook)
	r.mu.Unlock()
	if hook == r.deny {
		return tp.NewStatus(tp.CodeUnauthorized, "refused by "+hook, nil)
	}
	return nil
}

func (r *recorder) hooks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func (r *recorder) PreNewPeer(*tp.PeerConfig) error      { return r.hit("PreNewPeer") }
func (r *recorder) PostNewPeer(*tp.Peer) error           { return r.hit("PostNewPeer") }
func (r *recorder) PostReg(*tp.Handler) error            { return r.hit("PostReg") }
func (r *recorder) PostListen(net.Addr) error            { return r.hit("PostListen") }
func (r *recorder) PostDial(*tp.Session, bool) error     { return r.hit("PostDial") }
func (r *recorder) PostAccept(*tp.Session) error         { return r.hit("PostAccept") }
func (r *recorder) PostDisconnect(*tp.Session)           { r.hit("PostDisconnect") }
func (r *recorder) CallDone(*tp.CallCmd)                 { r.hit("CallDone") }
func (r *recorder) PreWriteCall(tp.WriteCtx) error       { return r.hit("PreWriteCall") }
func (r *recorder) PostWriteCall(tp.WriteCtx) error      { return r.hit("PostWriteCall") }
func (r *recorder) PreWriteReply(tp.WriteCtx) error      { return r.hit("PreWriteReply") }
func (r *recorder) PostWriteReply(tp.WriteCtx) error     { return r.hit("PostWriteReply") }
func (r *recorder) PreWritePush(tp.WriteCtx) error       { return r.hit("PreWritePush") }
func (r *recorder) PostWritePush(tp.WriteCtx) error      { return r.hit("PostWritePush") }
func (r *recorder) PreReadHeader(*tp.Session) error      { return r.hit("PreReadHeader") }
func (r *recorder) PostReadCallHeader(tp.ReadCtx) error  { return r.hit("PostReadCallHeader") }
func (r *recorder) PreReadCallBody(tp.ReadCtx) error     { return r.hit("PreReadCallBody") }
func (r *recorder) PostReadCallBody(c tp.ReadCtx) error  { return r.hit("PostReadCallBody") }
func (r *recorder) PostReadPushHeader(tp.ReadCtx) error  { return r.hit("PostReadPushHeader") }
func (r *recorder) PreReadPushBody(tp.ReadCtx) error     { return r.hit("PreReadPushBody") }
func (r *recorder) PostReadPushBody(tp.ReadCtx) error    { return r.hit("PostReadPushBody") }
func (r *recorder) PostReadReplyHeader(tp.ReadCtx) error { return r.hit("PostReadReplyHeader") }
func (r *recorder) PreReadReplyBody(tp.ReadCtx) error    { return r.hit("PreReadReplyBody") }
func (r *recorder) PostReadReplyBody(tp.ReadCtx) error   { return r.hit("PostReadReplyBody") }

// pushed signals each push the server's news handler gets.
var pushed = make(chan string, 10)

func Flash(ctx tp.PushCtx, arg *string) *tp.Status {
	pushed <- *arg
	return nil
}

func TestEveryHookRuns(t *testing.T) {
	srvRec, cliRec := &recorder{name: "srv"}, &recorder{name: "cli"}
	srv := newPeer(t, tp.PeerConfig{}, srvRec)
	srv.RouteCallFunc(Ping)
	srv.RoutePushFunc(Flash)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{}, cliRec)
	sess := dial(t, cli, addr)
	var n int
	if err := sess.Call(context.Background(), "/ping", 1, &n).Err(); err != nil || n != 2 {
		t.Fatal(n, err)
	}
	if st := sess.Push(context.Background(), "/flash", "hi"); st != nil {
		t.Fatal(st)
	}
	<-pushed
	sess.Close()
	// A closed session leaves the hub at once; PostDisconnect runs once its
	// read goroutine has ended.
	waitFor(t, "both ends to disconnect", func() bool {
		return slices.Contains(srvRec.hooks(), "PostDisconnect") && slices.Contains(cliRec.hooks(), "PostDisconnect")
	})

	want := map[*recorder][]string{
		srvRec: {"PreNewPeer", "PostNewPeer", "PostReg", "PostListen", "PostAccept", "PreReadHeader",
			"PostReadCallHeader", "PreReadCallBody", "PostReadCallBody", "PreWriteReply", "PostWriteReply",
			"PostReadPushHeader", "PreReadPushBody", "PostReadPushBody", "PostDisconnect"},
		cliRec: {"PreNewPeer", "PostNewPeer", "PostDial", "PreWriteCall", "PostWriteCall", "PreReadHeader",
			"PostReadReplyHeader", "PreReadReplyBody", "PostReadReplyBody", "CallDone", "PreWritePush", "PostWritePush", "PostDisconnect"},
	}
	for rec, hooks := range want {
		seen := rec.hooks()
		for _, h := range hooks {
			if !slices.Contains(seen, h) {
				t.Errorf("%s: hook %s never ran; ran: %v", rec.name, h, seen)
			}
		}
	}
}

func TestHookAborts(t *testing.T) {
	tests := []struct {
		deny     string
		onServer bool
		want     tp.Code
	}{
		{"PostReadCallHeader", true, tp.CodeUnauthorized},
		{"PreReadCallBody", true, tp.CodeUnauthorized},
		{"PostReadCallBody", true, tp.CodeUnauthorized},
		{"PreWriteReply", true, tp.CodeUnauthorized},
		{"PreWriteCall", false, tp.CodeUnauthorized},
		{"PostReadReplyHeader", false, tp.CodeUnauthorized},
		{"PostReadReplyBody", false, tp.CodeUnauthorized},
		{"PostAccept", true, tp.CodeUnauthorized}, // the refusal notice tells the dialer why
	}
	for _, tt := range tests {
		t.Run(tt.deny, func(t *testing.T) {
			rec := &recorder{deny: tt.deny}
			var srvPs, cliPs []tp.Plugin
			if tt.onServer {
				srvPs = append(srvPs, rec)
			} else {
				cliPs = append(cliPs, rec)
			}
			srv := newPeer(t, tp.PeerConfig{}, srvPs...)
			srv.RouteCallFunc(Ping)
			addr := serve(t, srv)
			cli := newPeer(t, tp.PeerConfig{}, cliPs...)
			sess, err := cli.Dial(context.Background(), addr)
			if err == nil { // a session hook's refusal is Dial's error
				var n int
				err = sess.Call(context.Background(), "/ping", 1, &n).Err()
			}
			if tp.CodeOf(err) != tt.want {
				t.Fatalf("got %v, want code %v", err, tt.want)
			}
			if tt.want == tp.CodeUnauthorized && !strings.Contains(err.Error(), tt.deny) {
				t.Fatalf("status %v does not name the hook", err)
			}
		})
	}
}

func TestPeerHooksAbortNewPeer(t *testing.T) {
	for _, deny := range []string{"PreNewPeer", "PostNewPeer"} {
		p, err := tp.NewPeer(tp.PeerConfig{}, &recorder{deny: deny})
		if p != nil || tp.CodeOf(err) != tp.CodeUnauthorized || !strings.Contains(err.Error(), deny) {
			t.Fatalf("NewPeer with %s refusing: %v, %v", deny, p, err)
		}
	}
	for _, cfg := range []tp.PeerConfig{{Network: "udp"}, {BodyCodec: 'Z'}} {
		if _, err := tp.NewPeer(cfg); tp.CodeOf(err) != tp.CodeInvalidArgument {
			t.Fatalf("NewPeer(%+v): %v, want invalid argument", cfg, err)
		}
	}
}

// A plugin whose method is named like a hook but has another signature is
// refused when added, rather than silently never run.
type oldHook struct{}

func (oldHook) Name() string                           { return "old" }
func (oldHook) PostAccept(*tp.Session) *tp.Status      { return nil }
func (oldHook) PreWriteCall(tp.WriteCtx) (bool, error) { return false, nil }

func TestHookWithWrongSignature(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "PostAccept") {
			t.Fatalf("a plugin with a wrong hook signature: recovered %v", r)
		}
	}()
	tp.NewPeer(tp.PeerConfig{}, oldHook{})
}

// A SubRoute's plugins run for its routes only.
func TestSubRoutePlugins(t *testing.T) {
	guard := &recorder{deny: "PreReadCallBody"}
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		srv.RouteCallFunc(Ping)
		srv.SubRoute("admin", guard).RouteCallFunc(Ping)
	})
	var n int
	if err := sess.Call(context.Background(), "/ping", 1, &n).Err(); err != nil {
		t.Fatalf("open route: %v", err)
	}
	if st := sess.Call(context.Background(), "/admin/ping", 1, &n).Status(); tp.CodeOf(st) != tp.CodeUnauthorized {
		t.Fatalf("guarded route: %v", st)
	}
}

// doneCounter counts CallDone per outcome code.
type doneCounter struct {
	mu    sync.Mutex
	codes []tp.Code
}

func (d *doneCounter) Name() string { return "done-counter" }
func (d *doneCounter) CallDone(c *tp.CallCmd) {
	d.mu.Lock()
	d.codes = append(d.codes, c.Status().Code())
	d.mu.Unlock()
}

// CallDone runs once per call on every path to its outcome, so plugins can
// end what PreWriteCall began.
func TestCallDoneOnEveryOutcome(t *testing.T) {
	done := &doneCounter{}
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	srv.RouteCallFunc(Sleepy)
	sess := dial(t, newPeer(t, tp.PeerConfig{}, done), serve(t, srv))
	var n int
	sess.Call(context.Background(), "/ping", 1, &n)
	sess.Call(context.Background(), "/nowhere", 1, &n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	sess.Call(ctx, "/sleepy", 200, nil)
	cancel()
	async := sess.AsyncCall(context.Background(), "/ping", 1, &n, nil)
	<-async.Done()
	sess.Close()
	sess.Call(context.Background(), "/ping", 1, &n)
	want := []tp.Code{tp.CodeOK, tp.CodeNotFound, tp.CodeTimeout, tp.CodeOK, tp.CodeConnClosed}
	done.mu.Lock()
	defer done.mu.Unlock()
	if !slices.Equal(done.codes, want) {
		t.Fatalf("CallDone saw %v, want %v", done.codes, want)
	}
}

// deregister is a PreClose hook that checks the peer still serves while it
// runs: a registry takes the peer out before the peer refuses work.
type deregister struct {
	sess  *tp.Session
	err   error
	calls chan error
}

func (d *deregister) Name() string { return "deregister" }

func (d *deregister) PreClose(ctx context.Context) error {
	var n int
	d.calls <- d.sess.Call(ctx, "/ping", 1, &n).Err()
	return d.err
}

func TestPreCloseRunsWhileServing(t *testing.T) {
	d := &deregister{err: errors.New("registry unreachable"), calls: make(chan error, 1)}
	srv := newPeer(t, tp.PeerConfig{}, d)
	srv.RouteCallFunc(Ping)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	d.sess = dial(t, cli, addr)
	err := srv.Close()
	if got := <-d.calls; got != nil {
		t.Fatalf("a call made while PreClose runs: %v; the peer should still serve", got)
	}
	if !errors.Is(err, d.err) {
		t.Fatalf("Close returned %v; want the PreClose error joined", err)
	}
}
