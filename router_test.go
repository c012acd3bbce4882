package tp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
)

type HTTPServer struct{ tp.CallCtx }

func (*HTTPServer) GetUser(*int) (int, *tp.Status) { return 0, nil }
func (*HTTPServer) Aa_Bb(*int) (int, *tp.Status)   { return 0, nil }
func (*HTTPServer) ABcXYz(*int) (int, error)       { return 0, nil }
func (*HTTPServer) Helper(x int) int               { return x } // returns no status: a helper, skipped

// NearMiss has one good handler and two that look like handlers but are not.
type NearMiss struct{ tp.CallCtx }

func (*NearMiss) Good(arg *int) (int, error)            { return *arg, nil }
func (*NearMiss) Wrong(arg int) (int, error)            { return arg, nil }
func (*NearMiss) ValueStatus(arg *int) (int, tp.Status) { return *arg, tp.Status{} }

type TooMany struct{ tp.CallCtx }

func (*TooMany) Two(a, b *int) (int, *tp.Status) { return 0, nil }

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
			p := newPeer(t, tp.PeerConfig{Naming: naming(tt.rpc)})
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
		{"a non-pointer argument", func(p *tp.Peer) { p.RouteCall(new(NearMiss)) }, "method "},
		{"two arguments", func(p *tp.Peer) { p.RouteCall(new(TooMany)) }, "method Two returns a status like a handler, but it takes 2 arguments"},
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

func unknownCall(ctx tp.UnknownCallCtx) (any, error) {
	var s string
	if err := ctx.Bind(&s); err != nil {
		return nil, err
	}
	ctx.SetBodyCodec(codec.PlainID)
	return fmt.Sprintf("%s got %q in codec %c", ctx.ServiceMethod(), s, ctx.InputBodyCodec()), nil
}

func TestUnknownHandlers(t *testing.T) {
	pushes := make(chan string, 1)
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		srv.SetUnknownCall(unknownCall)
		srv.SetUnknownPush(func(ctx tp.UnknownPushCtx) error {
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

// Handlers of every shape, for TestHandlerShapes: the router calls those
// with an unnamed pointer result (or none) directly, the others through
// reflect; both must behave alike.
type Reply struct{ N int }

type Shapes struct{ tp.CallCtx }

func (s *Shapes) Ptr(n *int) (*Reply, *tp.Status) { return shapeReply(s.CallCtx, *n) }
func (s *Shapes) PtrErr(n *int) (*Reply, error)   { return shapeErr(shapeReply(s.CallCtx, *n)) }
func (s *Shapes) Value(n *int) (Reply, *tp.Status) {
	r, st := shapeReply(s.CallCtx, *n)
	if r == nil {
		return Reply{}, st
	}
	return *r, st
}

type PushShapes struct{ tp.PushCtx }

func (p *PushShapes) Note(n *int) *tp.Status                { return shapePush(p.PushCtx, *n) }
func (p *PushShapes) NoteErr(n *int) error                  { return asErr(shapePush(p.PushCtx, *n)) }
func ShapeFunc(ctx tp.CallCtx, n *int) (*Reply, *tp.Status) { return shapeReply(ctx, *n) }
func ShapeFuncErr(ctx tp.CallCtx, n *int) (*Reply, error)   { return shapeErr(shapeReply(ctx, *n)) }
func ShapeFuncValue(ctx tp.CallCtx, n *int) (int, *tp.Status) {
	r, st := shapeReply(ctx, *n)
	if r == nil {
		return 0, st
	}
	return r.N, st
}
func ShapePush(ctx tp.PushCtx, n *int) *tp.Status { return shapePush(ctx, *n) }
func ShapePushErr(ctx tp.PushCtx, n *int) error   { return asErr(shapePush(ctx, *n)) }

var shapePushed = make(chan string, 16)

// shapeReply doubles n; 0 returns a nil reply, a negative n an error, and
// 13 panics. The handler sees its own route through its context.
func shapeReply(ctx tp.CallCtx, n int) (*Reply, *tp.Status) {
	switch {
	case n == 13:
		panic("thirteen")
	case n < 0:
		return nil, tp.NewStatus(tp.CodeInvalidArgument, "negative: "+ctx.ServiceMethod(), nil)
	case n == 0:
		return nil, nil
	}
	return &Reply{N: 2 * n}, nil
}

func shapeErr(r *Reply, st *tp.Status) (*Reply, error) { return r, asErr(st) }

// asErr returns st as an error, nil when it is OK.
func asErr(st *tp.Status) error {
	if st.OK() {
		return nil
	}
	return st
}

func shapePush(ctx tp.PushCtx, n int) *tp.Status {
	shapePushed <- fmt.Sprint(ctx.ServiceMethod(), " ", n)
	return nil
}

func TestHandlerShapes(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		srv.RouteCall(new(Shapes))
		srv.RoutePush(new(PushShapes))
		srv.RouteCallFunc(ShapeFunc)
		srv.RouteCallFunc(ShapeFuncErr)
		srv.RouteCallFunc(ShapeFuncValue)
		srv.RoutePushFunc(ShapePush)
		srv.RoutePushFunc(ShapePushErr)
	})
	ctx := context.Background()
	for _, route := range []string{"/shapes/ptr", "/shapes/ptr_err", "/shapes/value", "/shape_func", "/shape_func_err", "/shape_func_value"} {
		t.Run(route, func(t *testing.T) {
			var r Reply
			var n int
			out := any(&r)
			if strings.HasSuffix(route, "func_value") {
				out = &n
			}
			if err := sess.Call(ctx, route, 21, out).Err(); err != nil || (r.N != 42 && n != 42) {
				t.Fatalf("21: %+v %d %v", r, n, err)
			}
			if st := sess.Call(ctx, route, -1, out).Status(); tp.CodeOf(st) != tp.CodeInvalidArgument || st.Msg() != "negative: "+route {
				t.Fatalf("-1: %v", st)
			}
			if st := sess.Call(ctx, route, 13, out).Status(); tp.CodeOf(st) != tp.CodeInternal {
				t.Fatalf("a panic: %v", st)
			}
			r, n = Reply{N: 7}, 7
			if err := sess.Call(ctx, route, 0, out).Err(); err != nil {
				t.Fatalf("0: %v", err)
			}
		})
	}
	for _, route := range []string{"/push_shapes/note", "/push_shapes/note_err", "/shape_push", "/shape_push_err"} {
		sess.Push(ctx, route, 5)
		if got := <-shapePushed; got != route+" 5" {
			t.Fatalf("push %s: %q", route, got)
		}
	}
}

type Arg struct{ N int }
type Res struct{ S string }
type Big struct{ B []int }

// EchoT is a generic handler; each instance is a route of its own.
func EchoT[T any](ctx tp.CallCtx, arg *T) (*T, error) { return arg, nil }

// G is a generic controller.
type G[T any] struct{ tp.CallCtx }

func (g *G[T]) Get(arg *T) (*T, error) { return arg, nil }

// Counter keeps state across calls: a method value keeps its receiver.
type Counter struct {
	mu sync.Mutex
	n  int
}

func (c *Counter) Incr(ctx tp.CallCtx, arg *int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += *arg
	return c.n, nil
}

// Generic functions, generic controllers and method values register under
// readable names that keep instances apart, and serve.
func TestRouteNamesOfGenericsAndMethodValues(t *testing.T) {
	for _, rpc := range []bool{false, true} {
		t.Run(fmt.Sprint("rpc=", rpc), func(t *testing.T) {
			srv := newPeer(t, tp.PeerConfig{Naming: naming(rpc)})
			counter := new(Counter)
			var names []string
			names = append(names, srv.RouteCallFunc(EchoT[Arg]), srv.RouteCallFunc(EchoT[Res]), srv.RouteCallFunc(counter.Incr))
			names = append(names, srv.RouteCall(new(G[Big]))...)
			names = append(names, srv.RouteCall(new(G[Arg]))...)
			names = append(names, tp.HandleCall(srv.Router(), "/explicit/name", EchoT[Big]))
			seen := map[string]bool{}
			for _, n := range names {
				if strings.ContainsAny(n, "[]-") || strings.Contains(n, "github.com") || strings.Contains(n, "tp_test") {
					t.Errorf("route %q is not a readable name", n)
				}
				if seen[n] {
					t.Errorf("two routes named %q", n)
				}
				seen[n] = true
			}
			t.Logf("routes: %q", names)
			sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
			var a Arg
			if err := sess.Call(context.Background(), names[0], Arg{N: 3}, &a).Err(); err != nil || a.N != 3 {
				t.Fatalf("%s: %v, %v", names[0], a, err)
			}
			var r Res
			if err := sess.Call(context.Background(), names[1], Res{S: "x"}, &r).Err(); err != nil || r.S != "x" {
				t.Fatalf("%s: %v, %v", names[1], r, err)
			}
			var n int
			for i := 1; i <= 3; i++ {
				if err := sess.Call(context.Background(), names[2], 1, &n).Err(); err != nil || n != i {
					t.Fatalf("%s call %d: %d, %v (a method value must keep its receiver)", names[2], i, n, err)
				}
			}
			var big Big
			for _, name := range names[3:] {
				if err := sess.Call(context.Background(), name, Big{B: []int{1}}, &big).Err(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		})
	}
}

// What a newcomer gets wrong is caught early, with a message that says
// what to do.
func TestFirstHourMistakes(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCall(new(Math))
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	ctx := context.Background()

	// A typo, another case, the RPC style: the nearest route is named.
	for _, wrong := range []string{"/math/ad", "/Math/Add", "Math.Add", "/math_add"} {
		err := sess.Call(ctx, wrong, []int{1}, nil).Err()
		if tp.CodeOf(err) != tp.CodeNotFound || !strings.Contains(err.Error(), `did you mean "/math/add"?`) {
			t.Fatalf("%s: %v", wrong, err)
		}
	}
	if err := sess.Call(ctx, "/weather/today", 1, nil).Err(); strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("a name like no route: %v", err)
	}
	// A result that is not a pointer fails before anything is sent.
	var sum int
	err := sess.Call(ctx, "/math/add", []int{1, 2}, sum).Err()
	if tp.CodeOf(err) != tp.CodeInvalidArgument || !strings.Contains(err.Error(), "must be a pointer or nil, got int") {
		t.Fatalf("a non-pointer result: %v", err)
	}
}

// A push no route takes is dropped, counted and logged (a WARN at most once
// a second), since its sender cannot know.
func TestDroppedPushes(t *testing.T) {
	var logs syncBuffer
	srv := newPeer(t, tp.PeerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	for range 5 {
		if err := sess.Push(context.Background(), "/nobody/listens", 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the drops to be counted", func() bool { return srv.DroppedPushes() == 5 })
	if n := strings.Count(logs.String(), "level=WARN msg=\"dropped a push no handler takes\""); n != 1 {
		t.Fatalf("%d WARN lines for 5 drops in a burst, want 1:\n%s", n, logs.String())
	}
	// The limit is per session: a noisy one does not hide another.
	other := dial(t, newPeer(t, tp.PeerConfig{}), sess.RemoteAddr().String())
	if err := other.Push(context.Background(), "/nobody/listens", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other session's drop", func() bool { return srv.DroppedPushes() == 6 })
	if n := strings.Count(logs.String(), "level=WARN msg=\"dropped a push no handler takes\""); n != 2 {
		t.Fatalf("%d WARN lines after another session's first drop, want 2:\n%s", n, logs.String())
	}
	// A name a peer chose does not make a log line long.
	var debug syncBuffer
	srv2 := newPeer(t, tp.PeerConfig{Logger: slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	sess2 := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv2))
	for range 100 {
		if err := sess2.Push(context.Background(), "/"+strings.Repeat("x", 100_000), 1); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the long-named drops", func() bool { return srv2.DroppedPushes() == 100 })
	for _, line := range strings.Split(debug.String(), "\n") {
		if len(line) > 1024 {
			t.Fatalf("a log line of %d bytes", len(line))
		}
	}
	if n := strings.Count(debug.String(), "level=WARN"); n > 2 {
		t.Fatalf("%d WARN lines for 100 bad pushes", n)
	}
}

// naming is RPCNaming for rpc, else the default.
func naming(rpc bool) tp.Naming {
	if rpc {
		return tp.RPCNaming
	}
	return tp.Naming{}
}

// An application's own Naming names every route.
func TestCustomNaming(t *testing.T) {
	kebab := tp.Naming{
		Word: func(s string) string { return strings.ToLower(s) },
		Join: func(prefix, name string) string { return prefix + "::" + name },
	}
	srv := newPeer(t, tp.PeerConfig{Naming: kebab})
	got := srv.RouteCall(new(Math))
	if !slices.Contains(got, "::math::add") {
		t.Fatalf("routes %q, want ::math::add among them", got)
	}
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	if sum, err := tp.Call[int](context.Background(), sess, "::math::add", []int{2, 3}); err != nil || sum != 5 {
		t.Fatalf("::math::add: %d, %v", sum, err)
	}
}

// HalfWay has a handler and a method that takes one argument as handlers
// do but returns nothing.
type HalfWay struct{ tp.CallCtx }

func (*HalfWay) Good(arg *int) (int, error) { return *arg, nil }
func (*HalfWay) Wrong(arg int)              {}

// A method that takes one argument but is no handler is served by no
// route, and the peer says so.
func TestNearMissIsLogged(t *testing.T) {
	var logs syncBuffer
	srv := newPeer(t, tp.PeerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if got := srv.RouteCall(new(HalfWay)); len(got) != 1 || got[0] != "/half_way/good" {
		t.Fatalf("routes %q", got)
	}
	if !strings.Contains(logs.String(), "method=Wrong") {
		t.Fatalf("no word about Wrong:\n%s", logs.String())
	}
}

// A route takes bodies only in the peer's codec, unless tp.Codecs names
// more: a caller cannot pick a codec whose rules differ.
func TestRouteCodecs(t *testing.T) {
	type account struct {
		Name    string
		IsAdmin bool `json:"-"`
	}
	type verdict struct{ Admin bool }
	var got account
	signup := func(_ tp.CallCtx, a *account) (verdict, error) { got = *a; return verdict{a.IsAdmin}, nil }
	srv := newPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/signup", signup)
	tp.HandleCall(srv.SubRoute("/forms", tp.Codecs(codec.FormID, codec.JSONID)), "/signup", signup)
	sess := dial(t, newPeer(t, tp.PeerConfig{}), serve(t, srv))
	ctx := context.Background()

	if err := sess.Call(ctx, "/signup", account{Name: "eve"}, nil).Err(); err != nil {
		t.Fatalf("json, the peer's codec: %v", err)
	}
	form := url.Values{"Name": {"eve"}, "IsAdmin": {"true"}}
	err := sess.Call(ctx, "/signup", form, nil, tp.WithBodyCodec(codec.FormID)).Err()
	if tp.CodeOf(err) != tp.CodeUnsupported || !strings.Contains(err.Error(), "takes bodies in json, not form") {
		t.Fatalf("form to a json route: %v", err)
	}
	var v verdict
	if err := sess.Call(ctx, "/forms/signup", form, &v, tp.WithBodyCodec(codec.FormID)).Err(); err != nil || v.Admin || got.Name != "eve" {
		t.Fatalf("form to a route that takes it: %+v, %+v, %v", v, got, err)
	}
}
