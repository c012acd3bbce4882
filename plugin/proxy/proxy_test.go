package proxy_test

import (
	"context"
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
