package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/proxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

type Seen struct {
	Arg      string
	Via      []string
	RealIP   string
	Hello    string
	Deadline bool
}

// Inspect reports what reached the backend.
func Inspect(ctx tp.CallCtx, arg *string) (Seen, *tp.Status) {
	ctx.SetMeta("served-by", "backend")
	ctx.SetBodyCodec(codec.JSONID) // whatever the request's: the proxy keeps each as it is
	_, deadline := ctx.Context().Deadline()
	return Seen{Arg: *arg, Via: ctx.InputMeta().Values(proxy.ViaKey), RealIP: ctx.RealIP(),
		Hello: ctx.PeekMeta("hello"), Deadline: deadline}, nil
}

func Fail(ctx tp.CallCtx, _ *struct{}) (int, *tp.Status) {
	return 0, tp.NewStatus(tp.CodeFailedPrecondition, "backend says no", nil)
}

var pushed = make(chan string, 4)

func Note(ctx tp.PushCtx, s *string) *tp.Status {
	pushed <- *s + " via " + strings.Join(ctx.InputMeta().Values(proxy.ViaKey), ",")
	return nil
}

// gateway starts a peer that forwards everything to addr, and returns its
// address.
func gateway(t *testing.T, addr string) string {
	t.Helper()
	var upstream *tp.Session
	gw := tptest.NewPeer(t, tp.PeerConfig{}, proxy.New(func(l *proxy.Label) proxy.Forwarder {
		if strings.HasPrefix(l.ServiceMethod, "/nowhere") {
			return nil
		}
		return upstream
	}))
	upstream = tptest.Dial(t, gw, addr)
	return tptest.Serve(t, gw)
}

func TestProxy(t *testing.T) {
	backend := tptest.NewPeer(t, tp.PeerConfig{})
	backend.RouteCallFunc(Inspect, tp.Codecs(codec.JSONID, codec.PlainID)) // the callers below use both
	backend.RouteCallFunc(Fail)
	backend.RoutePushFunc(Note)
	first := gateway(t, gateway(t, tptest.Serve(t, backend))) // two hops

	for _, bodyCodec := range []byte{codec.JSONID, codec.PlainID} {
		cli := tptest.NewPeer(t, tp.PeerConfig{})
		sess := tptest.Dial(t, cli, first)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var seen Seen
		cmd := sess.Call(ctx, "/inspect", "payload", &seen, tp.WithSetMeta("hello", "world"), tp.WithBodyCodec(bodyCodec))
		cancel()
		if err := cmd.Err(); err != nil {
			t.Fatal(err)
		}
		if seen.Arg != "payload" || seen.Hello != "world" || !seen.Deadline || seen.RealIP != "127.0.0.1" {
			t.Fatalf("the backend saw %+v", seen)
		}
		if len(seen.Via) != 2 || !strings.Contains(seen.Via[0], "#") {
			t.Fatalf("chain across two hops: %q", seen.Via)
		}
		if got := cmd.InputMeta().Get("served-by"); got != "backend" {
			t.Fatalf("reply meta did not flow back: %q", got)
		}
	}

	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), first)
	st := sess.Call(context.Background(), "/fail", nil, nil).Status()
	if tp.CodeOf(st) != tp.CodeFailedPrecondition || st.Msg() != "backend says no" {
		t.Fatalf("the backend's status did not come back as it was: %v", st)
	}
	if st := sess.Call(context.Background(), "/missing", nil, nil).Status(); tp.CodeOf(st) != tp.CodeNotFound {
		t.Fatalf("a method nobody serves: %v", st)
	}
	if st := sess.Call(context.Background(), "/nowhere", nil, nil).Status(); tp.CodeOf(st) != tp.CodeNotFound || !strings.Contains(st.Msg(), "nowhere to forward") {
		t.Fatalf("a method the route function refuses: %v", st)
	}
	if st := sess.Push(context.Background(), "/note", "hi"); st != nil {
		t.Fatal(st)
	}
	if got := <-pushed; !strings.HasPrefix(got, "hi via ") || strings.Count(got, "#") != 2 {
		t.Fatalf("push through two hops: %q", got)
	}
}

// Proxies forwarding to each other end the loop at once, and a chain past
// MaxHops is refused.
func TestProxyLoopAndHopLimit(t *testing.T) {
	var toB, toA *tp.Session
	var hops atomic.Int64
	a := tptest.NewPeer(t, tp.PeerConfig{}, proxy.New(func(*proxy.Label) proxy.Forwarder { hops.Add(1); return toB }))
	b := tptest.NewPeer(t, tp.PeerConfig{}, proxy.New(func(*proxy.Label) proxy.Forwarder { hops.Add(1); return toA }))
	addrA, addrB := tptest.Serve(t, a), tptest.Serve(t, b)
	toB, toA = tptest.Dial(t, a, addrB), tptest.Dial(t, b, addrA)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), addrA)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := sess.Call(ctx, "/anything", 1, nil).Err()
	if tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("a call between two proxies forwarding to each other: %v", err)
	}
	if n := hops.Load(); n != 2 {
		t.Fatalf("the loop took %d hops before it was refused, want 2", n)
	}

	// A straight chain of three proxies to a backend, with a limit of two.
	backend := tptest.NewPeer(t, tp.PeerConfig{})
	backend.RouteCallFunc(Inspect)
	addr := tptest.Serve(t, backend)
	for range 3 {
		var up *tp.Session
		p := proxy.New(func(*proxy.Label) proxy.Forwarder { return up })
		p.MaxHops = 2
		gw := tptest.NewPeer(t, tp.PeerConfig{}, p)
		up = tptest.Dial(t, gw, addr)
		addr = tptest.Serve(t, gw)
	}
	far := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), addr)
	if err := far.Call(ctx, "/inspect", "x", nil).Err(); tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "2 proxies") {
		t.Fatalf("a chain past the hop limit: %v", err)
	}
}

// A client cannot choose its X-Real-IP: a peer believes the meta only from
// its trusted proxies, and a proxy always sets what it knows.
func TestRealIPIsNotTheClients(t *testing.T) {
	spoof := tp.WithSetMeta(tp.RealIPKey, "6.6.6.6")
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

	direct := tptest.NewPeer(t, tp.PeerConfig{})
	direct.RouteCallFunc(Inspect)
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, direct))
	var seen Seen
	if err := sess.Call(context.Background(), "/inspect", "x", &seen, spoof).Err(); err != nil || seen.RealIP != "127.0.0.1" {
		t.Fatalf("straight to a peer that trusts nobody: %q, %v", seen.RealIP, err)
	}

	trusting := tptest.NewPeer(t, tp.PeerConfig{TrustedProxies: loopback})
	trusting.RouteCallFunc(Inspect)
	sess = tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, trusting))
	if err := sess.Call(context.Background(), "/inspect", "x", &seen, spoof).Err(); err != nil || seen.RealIP != "6.6.6.6" {
		t.Fatalf("from a trusted address, the meta stands: %q, %v", seen.RealIP, err)
	}

	// Through a proxy (which trusts nobody in front of it) to a backend
	// that trusts the proxy: the proxy's word, not the client's.
	backend := tptest.NewPeer(t, tp.PeerConfig{TrustedProxies: loopback})
	backend.RouteCallFunc(Inspect)
	sess = tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), gateway(t, tptest.Serve(t, backend)))
	if err := sess.Call(context.Background(), "/inspect", "x", &seen, spoof).Err(); err != nil || seen.RealIP != "127.0.0.1" {
		t.Fatalf("through a proxy: %q, %v", seen.RealIP, err)
	}
}

// Chat echoes with the chain it came through, then a trailer; "fail"
// ends it with a status.
func Chat(ctx tp.StreamCtx, s *tp.Stream) error {
	for {
		var v string
		err := s.Recv(&v)
		if err == io.EOF {
			s.SetTrailer("served-by", "backend")
			return nil
		}
		if err != nil {
			canceled <- context.Cause(ctx.Context())
			return err
		}
		if v == "fail" {
			return tp.NewStatus(tp.CodeFailedPrecondition, "backend says no", nil)
		}
		if err := s.Send(fmt.Sprintf("%s via %d hops, hello %s", v, len(ctx.InputMeta().Values(proxy.ViaKey)), ctx.PeekMeta("hello"))); err != nil {
			return err
		}
	}
}

var canceled = make(chan error, 1)

// Streams go through two proxies both ways, with meta, trailer, the
// backend's status and the opener's reset.
func TestProxyStreams(t *testing.T) {
	backend := tptest.NewPeer(t, tp.PeerConfig{})
	backend.RouteStreamFunc(Chat)
	first := gateway(t, gateway(t, tptest.Serve(t, backend)))
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), first)
	ctx := context.Background()

	s, err := sess.OpenStream(ctx, "/chat", tp.WithSetMeta("hello", "world"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := s.Send(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := s.Recv(&v); err != nil || v != fmt.Sprint(i, " via 2 hops, hello world") {
			t.Fatalf("message %d: %q %v", i, v, err)
		}
	}
	s.CloseSend()
	if err := s.Recv(new(string)); err != io.EOF || s.Trailer().Get("served-by") != "backend" {
		t.Fatalf("the end: %v, trailer %v", err, s.Trailer())
	}

	s, _ = sess.OpenStream(ctx, "/chat")
	s.Send("fail")
	if err := s.Recv(new(string)); tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "backend says no") {
		t.Fatalf("the backend's status: %v", err)
	}

	s, _ = sess.OpenStream(ctx, "/chat")
	s.Send("x")
	s.Recv(new(string))
	s.Reset(tp.NewStatus(tp.CodeCanceled, "client gave up", nil))
	select {
	case cause := <-canceled:
		if tp.CodeOf(cause) != tp.CodeCanceled {
			t.Fatalf("the backend's stream ended with %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reset did not reach the backend")
	}

	s, _ = sess.OpenStream(ctx, "/nowhere")
	if err := s.Recv(new(string)); tp.CodeOf(err) != tp.CodeNotFound {
		t.Fatalf("a stream the route function refuses: %v", err)
	}
}
