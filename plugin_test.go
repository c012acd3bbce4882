package tp_test

import (
	"context"
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

func (r *recorder) hit(hook string) *tp.Status {
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

func (r *recorder) PreNewPeer(*tp.PeerConfig) *tp.Status      { return r.hit("PreNewPeer") }
func (r *recorder) PostNewPeer(*tp.Peer) *tp.Status           { return r.hit("PostNewPeer") }
func (r *recorder) PostReg(*tp.Handler) *tp.Status            { return r.hit("PostReg") }
func (r *recorder) PostListen(net.Addr) *tp.Status            { return r.hit("PostListen") }
func (r *recorder) PostDial(*tp.Session, bool) *tp.Status     { return r.hit("PostDial") }
func (r *recorder) PostAccept(*tp.Session) *tp.Status         { return r.hit("PostAccept") }
func (r *recorder) PostDisconnect(*tp.Session)                { r.hit("PostDisconnect") }
func (r *recorder) CallDone(*tp.CallCmd)                      { r.hit("CallDone") }
func (r *recorder) PreWriteCall(tp.WriteCtx) *tp.Status       { return r.hit("PreWriteCall") }
func (r *recorder) PostWriteCall(tp.WriteCtx) *tp.Status      { return r.hit("PostWriteCall") }
func (r *recorder) PreWriteReply(tp.WriteCtx) *tp.Status      { return r.hit("PreWriteReply") }
func (r *recorder) PostWriteReply(tp.WriteCtx) *tp.Status     { return r.hit("PostWriteReply") }
func (r *recorder) PreWritePush(tp.WriteCtx) *tp.Status       { return r.hit("PreWritePush") }
func (r *recorder) PostWritePush(tp.WriteCtx) *tp.Status      { return r.hit("PostWritePush") }
func (r *recorder) PreReadHeader(*tp.Session) *tp.Status      { return r.hit("PreReadHeader") }
func (r *recorder) PostReadCallHeader(tp.ReadCtx) *tp.Status  { return r.hit("PostReadCallHeader") }
func (r *recorder) PreReadCallBody(tp.ReadCtx) *tp.Status     { return r.hit("PreReadCallBody") }
func (r *recorder) PostReadCallBody(c tp.ReadCtx) *tp.Status  { return r.hit("PostReadCallBody") }
func (r *recorder) PostReadPushHeader(tp.ReadCtx) *tp.Status  { return r.hit("PostReadPushHeader") }
func (r *recorder) PreReadPushBody(tp.ReadCtx) *tp.Status     { return r.hit("PreReadPushBody") }
func (r *recorder) PostReadPushBody(tp.ReadCtx) *tp.Status    { return r.hit("PostReadPushBody") }
func (r *recorder) PostReadReplyHeader(tp.ReadCtx) *tp.Status { return r.hit("PostReadReplyHeader") }
func (r *recorder) PreReadReplyBody(tp.ReadCtx) *tp.Status    { return r.hit("PreReadReplyBody") }
func (r *recorder) PostReadReplyBody(tp.ReadCtx) *tp.Status   { return r.hit("PostReadReplyBody") }

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
	waitFor(t, "both ends to disconnect", func() bool { return srv.CountSession() == 0 && cli.CountSession() == 0 })

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
			sess := dial(t, cli, addr)
			var n int
			st := sess.Call(context.Background(), "/ping", 1, &n).Status()
			if st.Code() != tt.want {
				t.Fatalf("got %v, want code %v", st, tt.want)
			}
			if tt.want == tp.CodeUnauthorized && !strings.Contains(st.Msg(), tt.deny) {
				t.Fatalf("status %v does not name the hook", st)
			}
		})
	}
}

func TestPreNewPeerAbortsServe(t *testing.T) {
	p := newPeer(t, tp.PeerConfig{}, &recorder{deny: "PreNewPeer"})
	if _, st := p.Dial("127.0.0.1:1"); st.Code() != tp.CodeUnauthorized {
		t.Fatalf("Dial on a refused peer: %v", st)
	}
	bad := newPeer(t, tp.PeerConfig{Network: "udp"})
	if st := bad.ListenAndServe(); st.Code() != tp.CodeInvalidArgument || !strings.Contains(st.Error(), "udp") {
		t.Fatalf("bad network: %v", st)
	}
	if _, st := newPeer(t, tp.PeerConfig{BodyCodec: "xml"}).Dial("127.0.0.1:1"); st.Code() != tp.CodeInvalidArgument {
		t.Fatalf("bad codec: %v", st)
	}
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
	if st := sess.Call(context.Background(), "/admin/ping", 1, &n).Status(); st.Code() != tp.CodeUnauthorized {
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
