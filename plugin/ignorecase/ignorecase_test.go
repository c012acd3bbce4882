package ignorecase_test

import (
	"context"
	"strings"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/ignorecase"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

type Math struct{ tp.CallCtx }

func (m *Math) AddOne(n *int) (int, *tp.Status) { return *n + 1, nil }

var pushed = make(chan string, 4)

func Shout(ctx tp.PushCtx, s *string) *tp.Status {
	pushed <- ctx.ServiceMethod() + " " + *s
	return nil
}

func TestIgnoreCase(t *testing.T) {
	for _, rpc := range []bool{false, true} {
		srv := tptest.NewPeer(t, tp.PeerConfig{Naming: naming(rpc)}, ignorecase.New())
		add := srv.RouteCall(new(Math))[0]
		shout := srv.RoutePushFunc(Shout)
		sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, srv))
		for _, name := range []string{add, strings.ToUpper(add), strings.ToLower(add)} {
			var n int
			if err := sess.Call(context.Background(), name, 1, &n).Err(); err != nil || n != 2 {
				t.Fatalf("call %q (route %q): %d %v", name, add, n, err)
			}
		}
		if st := sess.Call(context.Background(), add+"x", 1, nil).Status(); tp.CodeOf(st) != tp.CodeNotFound {
			t.Fatalf("a name that matches no route in any case: %v", st)
		}
		sess.Push(context.Background(), strings.ToUpper(shout), "hi")
		if got := <-pushed; got != shout+" hi" {
			t.Fatalf("push: %q; the handler sees the route's own name", got)
		}
	}
}

// Without the plugin, case matters: the test above depends on it.
func TestCaseMattersWithout(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	srv.RouteCall(new(Math))
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), tptest.Serve(t, srv))
	if st := sess.Call(context.Background(), "/MATH/add_one", 1, nil).Status(); tp.CodeOf(st) != tp.CodeNotFound {
		t.Fatalf("got %v", st)
	}
}

func Lower(tp.CallCtx, *int) (int, *tp.Status) { return 0, nil }

func TestRoutesThatDifferOnlyInCase(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{}, ignorecase.New())
	srv.SubRoute("v1").RouteCallFunc(Lower)
	defer func() {
		if r, _ := recover().(string); !strings.Contains(r, `"/v1/lower" and "/V1/lower" differ only in case`) {
			t.Fatalf("got %q", r)
		}
	}()
	srv.SubRoute("V1").RouteCallFunc(Lower)
}

func naming(rpc bool) tp.Naming {
	if rpc {
		return tp.RPCNaming
	}
	return tp.HTTPNaming
}
