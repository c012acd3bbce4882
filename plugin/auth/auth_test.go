package auth_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/auth"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

var served atomic.Int64

func Echo(ctx tp.CallCtx, arg *string) (string, *tp.Status) {
	served.Add(1)
	return *arg, nil
}

const token = "s3cret"

// server returns the address of a peer that checks the token, and counts
// the checks.
var userKey = tp.NewKey[string]("user")

func server(t *testing.T, checks *atomic.Int64) (*tp.Peer, string) {
	srv := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewChecker(func(s *tp.Session, credential string) error {
		checks.Add(1)
		if !auth.Equal(credential, token) {
			return tp.NewStatus(tp.CodeUnauthorized, "unknown token", nil)
		}
		userKey.Set(s, "alice")
		return nil
	}))
	srv.RouteCallFunc(Echo)
	return srv, tptest.Serve(t, srv)
}

func TestAuth(t *testing.T) {
	var checks atomic.Int64
	srv, addr := server(t, &checks)

	t.Run("accepted", func(t *testing.T) {
		cli := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return token }))
		sess := tptest.Dial(t, cli, addr)
		var out string
		if err := sess.Call(context.Background(), "/echo", "hi", &out).Err(); err != nil || out != "hi" {
			t.Fatalf("call after auth: %q %v", out, err)
		}
		user := ""
		for s := range srv.Sessions() {
			user, _ = userKey.Get(s)
		}
		if user != "alice" {
			t.Fatalf("the checker's note in the swap: %q", user)
		}
	})

	t.Run("wrong credential", func(t *testing.T) {
		before := served.Load()
		cli := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return "guess" }))
		_, st := cli.Dial(context.Background(), addr)
		if tp.CodeOf(st) != tp.CodeUnauthorized || !strings.Contains(st.Error(), "unknown token") {
			t.Fatalf("Dial with a wrong credential: %v", st)
		}
		if cli.CountSession() != 0 {
			t.Fatal("the refused session is still held")
		}
		if served.Load() != before {
			t.Fatal("a handler ran for a refused session")
		}
	})

	t.Run("no bearer", func(t *testing.T) {
		before := served.Load()
		cli := tptest.NewPeer(t, tp.PeerConfig{})
		// Its hello comes where a credential should: the checker refuses at
		// once, and says what is missing.
		_, err := cli.Dial(context.Background(), addr)
		if tp.CodeOf(err) != tp.CodeUnauthorized || !strings.Contains(err.Error(), "NewBearer") {
			t.Fatalf("dial without a credential: %v", err)
		}
		if served.Load() != before || cli.CountSession() != 0 {
			t.Fatal("a session without a credential was served")
		}
	})

	t.Run("no checker", func(t *testing.T) {
		plain := tptest.NewPeer(t, tp.PeerConfig{})
		cli := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return token }))
		_, st := cli.Dial(context.Background(), tptest.Serve(t, plain))
		if tp.CodeOf(st) != tp.CodeFailedPrecondition || !strings.Contains(st.Error(), "NewChecker") {
			t.Fatalf("dial to a peer without a checker: %v", st)
		}
	})

	t.Run("silent dialer", func(t *testing.T) {
		srv := tptest.NewPeer(t, tp.PeerConfig{HandshakeTimeout: -1}, &auth.Checker{Timeout: 50 * time.Millisecond})
		c, err := net.Dial("tcp", tptest.Serve(t, srv)) // connects, then says nothing at all
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the silent connection was not closed: %v", err)
		}
	})
}

// A redial authenticates again.
func TestAuthOnRedial(t *testing.T) {
	var checks atomic.Int64
	srv, addr := server(t, &checks)
	cli := tptest.NewPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 5 * time.Millisecond},
		auth.NewBearer(func(*tp.Session) string { return token }))
	sess := tptest.Dial(t, cli, addr)
	// The Bearer's answer comes from the server's PostAccept, before the
	// server holds the session: wait for it, then cut it.
	tptest.WaitFor(t, "the server's session", func() bool { return srv.CountSession() == 1 })
	for s := range srv.Sessions() {
		s.Close()
	}
	tptest.WaitFor(t, "a second check", func() bool { return checks.Load() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sess.Call(ctx, "/echo", "again", nil).Err(); err != nil {
		t.Fatalf("call after the redial: %v", err)
	}
}

// Equal compares in constant time, and says what == says.
func TestEqual(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"s3cret", "s3cret", true}, {"s3cret", "s3creT", false}, {"", "", true}, {"s3cret", "s3cret!", false}} {
		if got := auth.Equal(tt.a, tt.b); got != tt.want {
			t.Fatalf("Equal(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// An address that keeps guessing is refused unchecked once it has failed
// MaxFailures times, even with the right credential.
func TestCheckerThrottles(t *testing.T) {
	var checks atomic.Int64
	ck := auth.NewChecker(func(s *tp.Session, credential string) error {
		checks.Add(1)
		if !auth.Equal(credential, token) {
			return tp.NewStatus(tp.CodeUnauthorized, "unknown token", nil)
		}
		return nil
	})
	ck.MaxFailures = 3
	srv := tptest.NewPeer(t, tp.PeerConfig{}, ck)
	addr := tptest.Serve(t, srv)
	for i := range 3 {
		cli := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return fmt.Sprint("guess", i) }))
		if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeUnauthorized {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	right := tptest.NewPeer(t, tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return token }))
	if _, err := right.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeUnauthorized || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("the right credential after 3 failures: %v", err)
	}
	if n := checks.Load(); n != 3 {
		t.Fatalf("the check ran %d times; a throttled attempt must not reach it", n)
	}
}

// farConn is a loopback connection that claims a remote address elsewhere.
type farConn struct{ net.Conn }

func (farConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 9090} }

// The credential does not cross a network in clear unless the user says
// the network is trusted.
func TestBearerRefusesPlaintext(t *testing.T) {
	var checks atomic.Int64
	_, addr := server(t, &checks)
	far := func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return farConn{c}, nil
	}
	b := auth.NewBearer(func(*tp.Session) string { return token })
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: far}, b)
	if _, err := cli.Dial(context.Background(), addr); tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "in clear") {
		t.Fatalf("a credential over a plain remote connection: %v", err)
	}
	if checks.Load() != 0 {
		t.Fatal("the credential was sent")
	}
	b.AllowPlaintext = true
	if _, err := cli.Dial(context.Background(), addr); err != nil {
		t.Fatalf("with AllowPlaintext: %v", err)
	}
}
