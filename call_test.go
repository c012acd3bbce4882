package tp_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/proto/jsonproto"
	"github.com/seed-a9a850dd/tp/proto/pbproto"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
	"github.com/seed-a9a850dd/tp/xfer/md5"
	"google.golang.org/protobuf/proto"
)

type Math struct{ tp.CallCtx }

func (m *Math) Add(arg *[]int) (int, *tp.Status) {
	sum := 0
	for _, v := range *arg {
		sum += v
	}
	return sum, nil
}

func (m *Math) Div(arg *[2]int) (int, error) {
	if arg[1] == 0 {
		return 0, errors.New("division by zero")
	}
	return arg[0] / arg[1], nil
}

func (m *Math) Fail(arg *int) (int, *tp.Status) {
	return 0, tp.NewStatus(1000+tp.Code(*arg), "failed on purpose", nil)
}

func (m *Math) Panic(arg *int) (int, *tp.Status) { panic("boom") }

// Meta echoes meta: it reads "in", and sets "out" on the reply.
func (m *Math) Meta(arg *string) (string, *tp.Status) {
	m.SetMeta("out", m.PeekMeta("in")+"!")
	m.AddMeta("multi", "1")
	m.AddMeta("multi", "2")
	return m.ServiceMethod() + " " + *arg, nil
}

// Echo serves any protobuf message back, marked as the benchmark does.
func Echo(ctx tp.CallCtx, arg *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, *tp.Status) {
	arg.Field1, arg.Field2 = proto.String("OK"), proto.Int32(100)
	return arg, nil
}

func Bytes(ctx tp.CallCtx, arg *[]byte) ([]byte, *tp.Status) { return append(*arg, '!'), nil }

func Form(ctx tp.CallCtx, arg *url.Values) (url.Values, *tp.Status) {
	arg.Add("seen", "yes")
	return *arg, nil
}

func routeMath(srv *tp.Peer) {
	srv.RouteCall(new(Math))
	srv.RouteCallFunc(Echo, tp.Codecs(codec.ProtobufID))
	srv.RouteCallFunc(Bytes, tp.Codecs(codec.PlainID))
	srv.RouteCallFunc(Form, tp.Codecs(codec.FormID))
}

func TestCall(t *testing.T) {
	ctx := context.Background()
	for _, proto := range []struct {
		name string
		fn   socket.ProtoFunc
	}{{"raw", nil}, {"json", jsonproto.New()}, {"protobuf", pbproto.New()}} {
		t.Run(proto.name, func(t *testing.T) {
			cfg := tp.PeerConfig{Proto: proto.fn}
			_, _, sess := pair(t, cfg, cfg, routeMath)
			t.Run("struct handler", func(t *testing.T) {
				var sum int
				if err := sess.Call(ctx, "/math/add", []int{1, 2, 3}, &sum).Err(); err != nil || sum != 6 {
					t.Fatalf("sum %d, %v", sum, err)
				}
			})
			t.Run("error result", func(t *testing.T) {
				var q int
				cmd := sess.Call(ctx, "/math/div", [2]int{7, 0}, &q)
				if cmd.Status().Code() != tp.CodeInternal || cmd.Status().CauseText() != "division by zero" {
					t.Fatalf("got %v, want internal error caused by division by zero", cmd.Status())
				}
				if err := sess.Call(ctx, "/math/div", [2]int{7, 2}, &q).Err(); err != nil || q != 3 {
					t.Fatalf("7/2 = %d, %v", q, err)
				}
			})
			t.Run("status result", func(t *testing.T) {
				st := sess.Call(ctx, "/math/fail", 7, nil).Status()
				if tp.CodeOf(st) != 1007 || st.Msg() != "failed on purpose" {
					t.Fatalf("got %v", st)
				}
			})
			t.Run("protobuf func handler, gzip and md5", func(t *testing.T) {
				var out benchpb.BenchmarkMessage
				err := sess.Call(ctx, "/echo", benchpb.New(), &out,
					tp.WithBodyCodec(codec.ProtobufID), tp.WithXferPipe(gzip.ID, md5.ID)).Err()
				if err != nil || out.GetField1() != "OK" || out.GetField2() != 100 || out.GetField9() != benchpb.New().GetField9() {
					t.Fatalf("got %v, %v", out.GetField1(), err)
				}
			})
			t.Run("plain bytes", func(t *testing.T) {
				var out []byte
				if err := sess.Call(ctx, "/bytes", []byte("hi"), &out, tp.WithBodyCodec(codec.PlainID)).Err(); err != nil || string(out) != "hi!" {
					t.Fatalf("got %q, %v", out, err)
				}
			})
			t.Run("form", func(t *testing.T) {
				var out url.Values
				if err := sess.Call(ctx, "/form", url.Values{"q": {"x"}}, &out, tp.WithBodyCodec(codec.FormID)).Err(); err != nil || out.Get("seen") != "yes" || out.Get("q") != "x" {
					t.Fatalf("got %v, %v", out, err)
				}
			})
			t.Run("meta both ways", func(t *testing.T) {
				var out string
				cmd := sess.Call(ctx, "/math/meta", "x", &out, tp.WithSetMeta("in", "hello"))
				if cmd.Err() != nil || out != "/math/meta x" || cmd.InputMeta().Get("out") != "hello!" ||
					fmt.Sprint(cmd.InputMeta().Values("multi")) != "[1 2]" {
					t.Fatalf("got %q, meta %v, %v", out, cmd.InputMeta().Get("out"), cmd.Err())
				}
			})
			t.Run("not found", func(t *testing.T) {
				if st := sess.Call(ctx, "/math/mul", []int{1}, nil).Status(); tp.CodeOf(st) != tp.CodeNotFound {
					t.Fatalf("got %v, want not found", st)
				}
			})
			t.Run("wrong argument type", func(t *testing.T) {
				var sum int
				if st := sess.Call(ctx, "/math/add", "not a list", &sum).Status(); tp.CodeOf(st) != tp.CodeBadMessage {
					t.Fatalf("got %v, want bad message", st)
				}
			})
			t.Run("handler panics", func(t *testing.T) {
				if st := sess.Call(ctx, "/math/panic", 1, nil).Status(); tp.CodeOf(st) != tp.CodeInternal || st.CauseText() != "boom" {
					t.Fatalf("got %v, want internal error", st)
				}
				var sum int // and the peer keeps serving
				if err := sess.Call(ctx, "/math/add", []int{2}, &sum).Err(); err != nil || sum != 2 {
					t.Fatalf("after a panic: %d, %v", sum, err)
				}
			})
			t.Run("unencodable argument", func(t *testing.T) {
				st := sess.Call(ctx, "/bytes", 42, nil, tp.WithBodyCodec(codec.PlainID)).Status()
				if tp.CodeOf(st) != tp.CodeInvalidArgument {
					t.Fatalf("got %v, want invalid argument", st)
				}
			})
		})
	}
}

func TestThousandConcurrentCalls(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, routeMath)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sum int
			if err := sess.Call(context.Background(), "/math/add", []int{i, i, 1}, &sum).Err(); err != nil {
				errs <- err
			} else if sum != 2*i+1 {
				errs <- fmt.Errorf("call %d: sum %d, want %d", i, sum, 2*i+1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Ping is served by both ends; Relay calls back the peer that called it.
func Ping(ctx tp.CallCtx, arg *int) (int, *tp.Status) { return *arg + 1, nil }

func Relay(ctx tp.CallCtx, arg *int) (int, *tp.Status) {
	var back int
	if err := ctx.Session().Call(ctx.Context(), "/ping", *arg, &back).Err(); err != nil {
		return 0, tp.NewStatus(tp.CodeInternal, "callback failed", err)
	}
	return back * 10, nil
}

func TestBothDirections(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	srv.RouteCallFunc(Ping)
	srv.RouteCallFunc(Relay)
	addr := serve(t, srv)
	cli := newPeer(t, tp.PeerConfig{})
	cli.RouteCallFunc(Ping)
	sess := dial(t, cli, addr)

	var out int
	if err := sess.Call(context.Background(), "/relay", 4, &out).Err(); err != nil || out != 50 {
		t.Fatalf("relay: %d, %v", out, err)
	}

	var srvSess *tp.Session
	for s := range srv.Sessions() {
		srvSess = s
		break
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		for _, s := range []*tp.Session{sess, srvSess} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got int
				if err := s.Call(context.Background(), "/ping", i, &got).Err(); err != nil || got != i+1 {
					t.Errorf("ping %d: %d, %v", i, got, err)
				}
			}()
		}
	}
	wg.Wait()
}

// News records each flash it is pushed on its session's inbox.
type News struct{ tp.PushCtx }

var inboxKey = tp.NewKey[chan string]("news inbox")

func (n *News) Flash(arg *string) *tp.Status {
	ch, _ := inboxKey.Get(n.Session())
	ch <- n.ServiceMethod() + " " + *arg
	return nil
}

func TestPushBroadcast(t *testing.T) {
	srv := newPeer(t, tp.PeerConfig{})
	addr := serve(t, srv)
	const clients = 5
	inboxes := make([]chan string, clients)
	for i := range inboxes {
		cli := newPeer(t, tp.PeerConfig{})
		cli.RoutePush(new(News))
		s := dial(t, cli, addr)
		inboxes[i] = make(chan string, 1)
		inboxKey.Set(s, inboxes[i])
	}
	for srv.CountSession() < clients { // accepted sessions register on their own goroutine
		time.Sleep(time.Millisecond)
	}
	if err := srv.Broadcast(context.Background(), "/news/flash", "extra!", nil); err != nil {
		t.Error(err)
	}
	for i, in := range inboxes {
		select {
		case got := <-in:
			if got != "/news/flash extra!" {
				t.Fatalf("client %d got %q", i, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d got no push", i)
		}
	}
}

func TestAsyncCall(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, routeMath)
	const n = 50
	done := make(chan *tp.CallCmd, n)
	sums := make([]int, n)
	for i := range sums {
		sess.AsyncCall(context.Background(), "/math/add", []int{i, 1}, &sums[i], done)
	}
	for i := 0; i < n; i++ {
		c := <-done
		<-c.Done()
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
		if _, ok := c.Result().(*int); !ok {
			t.Fatalf("Result() is %T, want the *int passed in", c.Result())
		}
	}
	for i, s := range sums {
		if s != i+1 {
			t.Fatalf("call %d: sum %d", i, s)
		}
	}
	// A nil done channel: wait on Done.
	var sum int
	c := sess.AsyncCall(context.Background(), "/math/add", []int{5}, &sum, nil)
	<-c.Done()
	if c.Err() != nil || sum != 5 {
		t.Fatalf("sum %d, %v", sum, c.Err())
	}
}
