package tp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
)

type HTTPServer struct{ tp.CallCtx }

func (*HTTPServer) GetUser(*int) (int, *tp.Status)    { return 0, nil }
func (*HTTPServer) Aa_Bb(*int) (int, *tp.Status)      { return 0, nil }
func (*HTTPServer) ABcXYz(*int) (int, error)          { return 0, nil }
func (*HTTPServer) Helper(x int) int                  { return x } // wrong shape: skipped
func (*HTTPServer) NoPointer(x int) (int, *tp.Status) { return x, nil }

type Empty struct{ tp.CallCtx }

func (*Empty) Helper() {}

type NoCtx struct{}

func (*NoCtx) Add(*int) (int, *tp.Status) { return 0, nil }

func TestRouteNames(t *testing.T) {
	tests := []struct {
		name  string
		rpc   bool
		sub   string
		route func(r *tp.Router) []string
		want  []string
	}{
		{"http struct", false, "", func(r *tp.Router) []string { return r.RouteCall(new(HTTPServer)) },
			[]string{"/http_server/a_bc_x_yz", "/http_server/aa/bb", "/http_server/get_user"}},
		{"rpc struct", true, "", func(r *tp.Router) []string { return r.RouteCall(new(Math)) },
			[]string{"Math.Add", "Math.Div", "Math.Fail", "Math.Meta", "Math.Panic"}},
		{"http func in a group", false, "v1", func(r *tp.Router) []string { return []string{r.RouteCallFunc(Ping)} },
			[]string{"/v1/ping"}},
		{"rpc func in a group", true, "v1", func(r *tp.Router) []string { return []string{r.RouteCallFunc(Ping)} },
			[]string{"v1.Ping"}},
		{"nested groups", false, "a", func(r *tp.Router) []string { return r.SubRoute("/b/").RoutePush(new(News)) },
			[]string{"/a/b/news/flash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t, tp.PeerConfig{RPCStyle: tt.rpc})
			r := p.Router()
			if tt.sub != "" {
				r = p.SubRoute(tt.sub)
			}
			got := tt.route(r)
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("routes %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoutePanics(t *testing.T) {
	tests := []struct {
		name  string
		route func(p *tp.Peer)
		want  string
	}{
		{"no handler methods", func(p *tp.Peer) { p.RouteCall(new(Empty)) }, "no method has the shape func (c *Ctrl) Method(arg *T)"},
		{"no embedded context", func(p *tp.Peer) { p.RouteCall(new(NoCtx)) }, "must embed tp.CallCtx"},
		{"push ctrl as call", func(p *tp.Peer) { p.RouteCall(new(News)) }, "must embed tp.CallCtx"},
		{"not a pointer", func(p *tp.Peer) { p.RouteCall(Math{}) }, "want a pointer to a struct"},
		{"duplicate", func(p *tp.Peer) { p.RouteCall(new(Math)); p.RouteCall(new(Math)) }, `"/math/add" is already registered`},
		{"func literal", func(p *tp.Peer) {
			p.RouteCallFunc(func(tp.CallCtx, *int) (int, *tp.Status) { return 0, nil })
		}, "use a named function"},
		{"func shape", func(p *tp.Peer) { p.RouteCallFunc(strings.ToUpper) }, "want func(ctx tp.CallCtx, arg *T)"},
		{"push func shape", func(p *tp.Peer) { p.RoutePushFunc(Ping) }, "want func(ctx tp.PushCtx, arg *T)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t, tp.PeerConfig{})
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Fatalf("panic %v, want one containing %q", r, tt.want)
				}
			}()
			tt.route(p)
		})
	}
}

func unknownCall(ctx tp.UnknownCallCtx) (any, *tp.Status) {
	var s string
	if st := ctx.Bind(&s); st != nil {
		return nil, st
	}
	ctx.SetBodyCodec(codec.PlainID)
	return fmt.Sprintf("%s got %q in codec %c", ctx.ServiceMethod(), s, ctx.InputBodyCodec()), nil
}

func TestUnknownHandlers(t *testing.T) {
	pushes := make(chan string, 1)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		srv.SetUnknownCall(unknownCall)
		srv.SetUnknownPush(func(ctx tp.UnknownPushCtx) *tp.Status {
			pushes <- ctx.ServiceMethod() + " " + string(ctx.InputBody())
			return nil
		})
	})
	var out string
	if err := sess.Call(context.Background(), "/any/thing", "x", &out).Err(); err != nil || out != `/any/thing got "x" in codec j` {
		t.Fatalf("got %q, %v", out, err)
	}
	if st := sess.Push(context.Background(), "/some/push", "y", tp.WithBodyCodec(codec.PlainID)); st != nil {
		t.Fatal(st)
	}
	if got := <-pushes; got != "/some/push y" {
		t.Fatalf("push got %q", got)
	}
}
