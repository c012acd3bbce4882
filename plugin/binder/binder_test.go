package binder_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/binder"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

type Signup struct {
	Name  string `validate:"required,min=3"`
	Age   int    `validate:"gte=18"`
	Email string `validate:"omitempty,email"`
	Lang  string `bind:"meta:lang" validate:"omitempty,oneof=en de"`
	Tries int    `bind:"meta:tries"`
	User  string `bind:"session:user" validate:"required"`
}

var calls atomic.Int64

func Join(ctx tp.CallCtx, s *Signup) (Signup, *tp.Status) {
	calls.Add(1)
	return *s, nil
}

var pushes = make(chan Signup, 10)

func Note(ctx tp.PushCtx, s *Signup) *tp.Status {
	pushes <- *s
	return nil
}

func TestBinder(t *testing.T) {
	b := binder.New()
	srv := tptest.NewPeer(t, tp.PeerConfig{}, b)
	srv.RouteCallFunc(Join)
	srv.RoutePushFunc(Note)
	cli := tptest.NewPeer(t, tp.PeerConfig{})
	sess := tptest.Dial(t, cli, tptest.Serve(t, srv))
	tptest.WaitFor(t, "the server's session", func() bool { return srv.CountSession() == 1 })
	for s := range srv.Sessions() {
		b.Value("user").Set(s, "alice")
	}

	good := Signup{Name: "Bob", Age: 30}
	tests := []struct {
		name     string
		arg      Signup
		meta     []string
		wantCode tp.Code
		wantMsg  string // in the status: the field and the rule
		check    func(t *testing.T, got Signup)
	}{
		{name: "valid, bound from meta and the session", arg: good, meta: []string{"lang", "de", "tries", "3"},
			check: func(t *testing.T, got Signup) {
				if got.Lang != "de" || got.Tries != 3 || got.User != "alice" {
					t.Fatalf("bound values: %+v", got)
				}
			}},
		{name: "required", arg: Signup{Age: 30}, wantCode: tp.CodeInvalidArgument, wantMsg: `field Name breaks rule "required"`},
		{name: "min", arg: Signup{Name: "Al", Age: 30}, wantCode: tp.CodeInvalidArgument, wantMsg: `field Name breaks rule "min=3"`},
		{name: "gte", arg: Signup{Name: "Bob", Age: 12}, wantCode: tp.CodeInvalidArgument, wantMsg: `field Age breaks rule "gte=18"`},
		{name: "email", arg: Signup{Name: "Bob", Age: 30, Email: "nope"}, wantCode: tp.CodeInvalidArgument, wantMsg: `field Email breaks rule "email"`},
		{name: "rule on a bound value", arg: good, meta: []string{"lang", "fr"}, wantCode: tp.CodeInvalidArgument, wantMsg: `field Lang breaks rule "oneof=en de"`},
		{name: "meta that does not parse", arg: good, meta: []string{"tries", "many"}, wantCode: tp.CodeInvalidArgument, wantMsg: `meta "tries" for field Tries`},
		{name: "bound fields sent in the body are overwritten", arg: Signup{Name: "Bob", Age: 30, Lang: "en", Tries: 9, User: "admin"},
			check: func(t *testing.T, got Signup) {
				if got.User != "alice" || got.Lang != "" || got.Tries != 0 {
					t.Fatalf("a client filled bound fields: %+v", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var settings []tp.MessageSetting
			for i := 0; i < len(tt.meta); i += 2 {
				settings = append(settings, tp.WithSetMeta(tt.meta[i], tt.meta[i+1]))
			}
			before := calls.Load()
			var got Signup
			st := sess.Call(context.Background(), "/join", tt.arg, &got, settings...).Status()
			if tp.CodeOf(st) != tt.wantCode || !strings.Contains(st.Msg(), tt.wantMsg) {
				t.Fatalf("got %v, want code %v with %q", st, tt.wantCode, tt.wantMsg)
			}
			if ran := calls.Load() != before; ran != (tt.wantCode == tp.CodeOK) {
				t.Fatalf("handler ran: %v", ran)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}

	// A session with no user: a body claiming one does not stand in for it.
	other := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}), sess.RemoteAddr().String())
	claim := Signup{Name: "Eve", Age: 30, User: "admin"}
	if err := other.Call(context.Background(), "/join", claim, nil).Err(); tp.CodeOf(err) != tp.CodeInvalidArgument || !strings.Contains(err.Error(), `field User breaks rule "required"`) {
		t.Fatalf("a body claiming a user the session has not: %v", err)
	}

	// A push that breaks a rule is dropped; a valid one after it arrives.
	sess.Push(context.Background(), "/note", Signup{Name: "X"})
	sess.Push(context.Background(), "/note", good)
	if got := <-pushes; got.Name != "Bob" || got.User != "alice" {
		t.Fatalf("first push through: %+v", got)
	}
}

func TestBadBindTag(t *testing.T) {
	type Bad struct {
		X []int `bind:"meta:x"`
	}
	b := binder.New()
	srv := tptest.NewPeer(t, tp.PeerConfig{}, b)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "meta is text") {
			t.Fatalf("registration with a bad bind tag: %v", r)
		}
	}()
	srv.RouteCallFunc(BadRoute[Bad])
}

func BadRoute[T any](tp.CallCtx, *T) (int, *tp.Status) { return 0, nil }
