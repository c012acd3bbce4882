package secure_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/auth"
	"github.com/seed-a9a850dd/tp/plugin/secure"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

const secret = "top secret: the cake is a lie"

var served atomic.Int64

func Echo(ctx tp.CallCtx, s *string) (string, *tp.Status) {
	served.Add(1)
	return *s + " (echoed)", nil
}

type Vault struct{ tp.CallCtx }

func (v *Vault) Open(s *string) (string, *tp.Status) { return *s + " (from the vault)", nil }

var pushed = make(chan string, 4)

func Note(ctx tp.PushCtx, s *string) *tp.Status {
	pushed <- *s
	return nil
}

func mustNew(t *testing.T, cfg secure.Config) *secure.Plugin {
	t.Helper()
	s, err := secure.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type setup struct {
	sess  *tp.Session
	relay *tptest.Relay
	srv   *tp.Peer
}

func newServer(t *testing.T, cfg secure.Config, extra ...tp.Plugin) *tp.Peer {
	t.Helper()
	sec := mustNew(t, cfg)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, append([]tp.Plugin{sec}, extra...)...)
	srv.RouteCallFunc(Echo)
	srv.RouteCallFunc(Fail)
	srv.RoutePushFunc(Note)
	srv.RouteCall(new(Vault), sec.Route())
	return srv
}

func Fail(ctx tp.CallCtx, s *string) (string, *tp.Status) {
	return "", tp.NewStatus(tp.CodeNotFound, "no such thing", nil)
}

func start(t *testing.T, srvCfg, cliCfg secure.Config, srvExtra, cliExtra []tp.Plugin) setup {
	t.Helper()
	srv := newServer(t, srvCfg, srvExtra...)
	relay := tptest.NewRelay(t, tptest.Serve(t, srv))
	cli := tptest.NewPeer(t, tp.PeerConfig{}, append([]tp.Plugin{mustNew(t, cliCfg)}, cliExtra...)...)
	cli.RouteCallFunc(Echo) // so the server can call back
	return setup{tptest.Dial(t, cli, relay.Addr), relay, srv}
}

func mustKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

var (
	shared           = bytes.Repeat([]byte{7}, 32)
	srvPub, srvKey   = mustKey(nil)
	cliPub, cliKey   = mustKey(nil)
	evilPub, evilKey = mustKey(nil)
)

// modes are the ways to authenticate the exchange, each as a server and
// client config.
var modes = []struct {
	name     string
	srv, cli secure.Config
}{
	{"unauthenticated", secure.Config{Unauthenticated: true}, secure.Config{Unauthenticated: true}},
	{"shared key", secure.Config{Key: shared}, secure.Config{Key: shared}},
	{"pinned server", secure.Config{Identity: srvKey}, secure.Config{Trust: []ed25519.PublicKey{srvPub}}},
	{"mutual", secure.Config{Identity: srvKey, TrustDialers: []ed25519.PublicKey{cliPub}}, secure.Config{Identity: cliKey, Trust: []ed25519.PublicKey{srvPub}}},
	{"all three", secure.Config{Key: shared, Identity: srvKey, TrustDialers: []ed25519.PublicKey{cliPub}}, secure.Config{Key: shared, Identity: cliKey, Trust: []ed25519.PublicKey{srvPub}}},
}

func TestSecure(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			s := start(t, mode.srv, mode.cli, nil, nil)
			var out string
			if err := s.sess.Call(context.Background(), "/echo", secret, &out, secure.WithSecure(), tp.WithSetMeta("k", "v")).Err(); err != nil || out != secret+" (echoed)" {
				t.Fatalf("sealed call: %q %v", out, err)
			}
			err := s.sess.Call(context.Background(), "/fail", secret, &out, secure.WithSecure()).Err()
			if tp.CodeOf(err) != tp.CodeNotFound {
				t.Fatalf("sealed call failing: %v", err)
			}
			if err := s.sess.Push(context.Background(), "/note", secret, secure.WithSecure()); err != nil {
				t.Fatal(err)
			}
			if got := <-pushed; got != secret {
				t.Fatalf("sealed push: %q", got)
			}
			// The other way: the server calls the client.
			var back *tp.Session
			for sess := range s.srv.Sessions() {
				back = sess
			}
			if err := back.Call(context.Background(), "/echo", secret, &out, secure.WithSecure()).Err(); err != nil || out != secret+" (echoed)" {
				t.Fatalf("sealed call from the server: %q %v", out, err)
			}
			if bytes.Contains(s.relay.Seen(), []byte("cake")) {
				t.Fatal("the secret crossed the network in clear")
			}
			// The control: without WithSecure it does cross in clear.
			s.sess.Call(context.Background(), "/echo", secret, &out)
			if !bytes.Contains(s.relay.Seen(), []byte("cake")) {
				t.Fatal("a plaintext call was not seen on the wire: the check above proves nothing")
			}
		})
	}
}

// Many concurrent sealed calls: seals and opens interleave out of order,
// and none is taken for a replay.
func TestSecureConcurrent(t *testing.T) {
	s := start(t, modes[1].srv, modes[1].cli, nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				var out string
				if err := s.sess.Call(context.Background(), "/echo", "x", &out, secure.WithSecure()).Err(); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestSecureRefusals(t *testing.T) {
	tests := []struct {
		name               string
		srv, cli           secure.Config
		srvExtra, cliExtra []tp.Plugin
		method             string
		settings           []tp.MessageSetting
		want               tp.Code
		wantMsg            string
		handlerRuns        bool
	}{
		// Sealing happens after the last write hook, whatever the order.
		{name: "a later hook sets meta", cliExtra: []tp.Plugin{setMeta{}}, method: "/echo", settings: []tp.MessageSetting{secure.WithSecure()},
			handlerRuns: true},
		{name: "plaintext to a guarded route", method: "/vault/open", want: tp.CodeUnauthorized, wantMsg: "takes only sealed"},
		{name: "sealed to a guarded route", method: "/vault/open", settings: []tp.MessageSetting{secure.WithSecure()}},
		{name: "all", cli: secure.Config{Key: shared, All: true}, method: "/vault/open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.srv.Key == nil {
				tt.srv.Key = shared
			}
			if tt.cli.Key == nil {
				tt.cli.Key = shared
			}
			s := start(t, tt.srv, tt.cli, tt.srvExtra, tt.cliExtra)
			before := served.Load()
			st := s.sess.Call(context.Background(), tt.method, secret, nil, tt.settings...).Status()
			if tp.CodeOf(st) != tt.want || !strings.Contains(st.Msg(), tt.wantMsg) {
				t.Fatalf("got %v, want %v with %q", st, tt.want, tt.wantMsg)
			}
			if ran := served.Load() != before; tt.method == "/echo" && ran != tt.handlerRuns {
				t.Fatalf("handler ran: %v", ran)
			}
		})
	}
}

// setMeta adds meta after secure has sealed: what a relay does, or a
// plugin added after secure.
type setMeta struct{}

func (setMeta) Name() string { return "set-meta" }
func (setMeta) PreWriteCall(c tp.WriteCtx) error {
	c.Output().Meta.Set("role", "admin")
	return nil
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  secure.Config
		want string
	}{
		{"nothing authenticates", secure.Config{}, "set Config.Key"},
		{"nothing authenticates, All", secure.Config{All: true}, "Unauthenticated"},
		{"short key", secure.Config{Key: []byte("short")}, "Config.Key has 5 bytes"},
		{"bad identity", secure.Config{Identity: ed25519.PrivateKey("x")}, "Config.Identity"},
		{"bad trusted key", secure.Config{Trust: []ed25519.PublicKey{ed25519.PublicKey("x")}}, "trusted key"},
		{"bad trusted dialer", secure.Config{TrustDialers: []ed25519.PublicKey{ed25519.PublicKey("x")}}, "trusted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := secure.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// The exchange fails, at Dial, whenever the two ends cannot authenticate
// each other as configured.
func TestExchangeRefusals(t *testing.T) {
	tests := []struct {
		name     string
		srv, cli secure.Config
		want     tp.Code
		wantMsg  string
	}{
		{"another key", secure.Config{Key: shared}, secure.Config{Key: bytes.Repeat([]byte{8}, 32)}, tp.CodeUnauthorized, "another Config.Key"},
		{"key at one end", secure.Config{Key: shared}, secure.Config{Unauthenticated: true}, tp.CodeFailedPrecondition, "one end has Config.Key"},
		{"key at the other end", secure.Config{Unauthenticated: true}, secure.Config{Key: shared}, tp.CodeFailedPrecondition, "one end has Config.Key"},
		{"server proves another key", secure.Config{Identity: evilKey}, secure.Config{Trust: []ed25519.PublicKey{srvPub}}, tp.CodeUnauthorized, "not in Config.Trust"},
		{"dialer trusts another key", secure.Config{Identity: srvKey}, secure.Config{Trust: []ed25519.PublicKey{evilPub}}, tp.CodeUnauthorized, "not in Config.Trust"},
		{"server proves nothing", secure.Config{Unauthenticated: true}, secure.Config{Trust: []ed25519.PublicKey{srvPub}}, tp.CodeFailedPrecondition, "no Config.Identity"},
		{"dialer proves nothing", secure.Config{Identity: srvKey, TrustDialers: []ed25519.PublicKey{cliPub}}, secure.Config{Trust: []ed25519.PublicKey{srvPub}}, tp.CodeUnauthorized, "TrustDialers"},
		{"dialer proves another key", secure.Config{Identity: srvKey, TrustDialers: []ed25519.PublicKey{cliPub}}, secure.Config{Identity: evilKey, Trust: []ed25519.PublicKey{srvPub}}, tp.CodeUnauthorized, "TrustDialers"},
		{"dialer authenticates nothing", secure.Config{Identity: srvKey}, secure.Config{Identity: cliKey}, tp.CodeFailedPrecondition, "nothing proves who this peer dials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := served.Load()
			srv := newServer(t, tt.srv)
			cli := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, tt.cli))
			sess, err := cli.Dial(context.Background(), tptest.Serve(t, srv))
			if err == nil {
				err = sess.Call(context.Background(), "/echo", "x", nil).Err()
			}
			if tp.CodeOf(err) != tt.want || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %v, want %v with %q", err, tt.want, tt.wantMsg)
			}
			if served.Load() != before {
				t.Fatal("a handler ran")
			}
		})
	}
}

// A dialer without the plugin cannot talk to a peer with it: its Dial
// fails, saying why.
func TestExchangeNeedsBothEnds(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Key: shared}))
	srv.RouteCallFunc(Echo)
	_, err := tptest.NewPeer(t, tp.PeerConfig{}).Dial(context.Background(), tptest.Serve(t, srv))
	if tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "add the secure plugin") {
		t.Fatalf("got %v", err)
	}
}

// A man in the middle that is itself a stock tp peer with the plugin: it
// completes an unauthenticated exchange (the opt-in says so), and no
// authenticated one, from either side.
func TestPeerInTheMiddle(t *testing.T) {
	srv := newServer(t, secure.Config{Identity: srvKey, TrustDialers: []ed25519.PublicKey{cliPub}})
	srvAddr := tptest.Serve(t, srv)
	var stolen atomic.Value
	evil := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Identity: evilKey, Unauthenticated: true}))
	tp.HandleCall(evil.Router(), "/echo", func(ctx tp.CallCtx, s *string) (string, error) {
		stolen.Store(*s)
		return *s + " (echoed)", nil
	})
	evilAddr := tptest.Serve(t, evil)

	for _, tt := range []struct {
		name string
		cfg  secure.Config
		want tp.Code
	}{
		{"pinned", secure.Config{Trust: []ed25519.PublicKey{srvPub}}, tp.CodeUnauthorized},
		{"shared key", secure.Config{Key: shared}, tp.CodeFailedPrecondition},
		{"unauthenticated, as opted in", secure.Config{Unauthenticated: true}, tp.CodeOK},
	} {
		t.Run("client dials the middle, "+tt.name, func(t *testing.T) {
			stolen.Store("")
			cli := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, tt.cfg))
			sess, err := cli.Dial(context.Background(), evilAddr)
			if err == nil {
				err = sess.Call(context.Background(), "/echo", secret, nil, secure.WithSecure()).Err()
			}
			if tp.CodeOf(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if got := stolen.Load(); (got == secret) != (tt.want == tp.CodeOK) {
				t.Fatalf("the middle read %q", got)
			}
		})
	}
	// The middle's other half: it dials the server, which asks for a
	// client's key.
	for _, cfg := range []secure.Config{{Unauthenticated: true}, {Identity: evilKey, Trust: []ed25519.PublicKey{srvPub}}} {
		_, err := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, cfg)).Dial(context.Background(), srvAddr)
		if tp.CodeOf(err) != tp.CodeUnauthorized {
			t.Fatalf("the middle dialed the server: %v", err)
		}
	}
}

// frame edits a rawproto frame through fn.
func frame(t *testing.T, f []byte, fn func(m *socket.Message)) []byte {
	p := rawproto.New()()
	m := new(socket.Message)
	if err := socket.Unpack(p, f, m, 1<<20); err != nil {
		t.Error(err)
		return f
	}
	fn(m)
	out, err := socket.Pack(p, nil, m)
	if err != nil {
		t.Error(err)
		return f
	}
	return out
}

func peek(t *testing.T, f []byte) *socket.Message {
	m := new(socket.Message)
	if err := socket.Unpack(rawproto.New()(), f, m, 1<<20); err != nil {
		t.Error(err)
	}
	return m
}

// What a relay on the path does to sealed messages, and what each end
// makes of it.
func TestTamperingRelay(t *testing.T) {
	sealed := func(t *testing.T, f []byte, typ socket.Type) bool {
		m := peek(t, f)
		return m.Type == typ && m.Meta.Get(secure.MetaKey) != ""
	}
	tests := []struct {
		name    string
		method  string
		edit    func(t *testing.T, toServer bool, f []byte) []byte
		want    tp.Code
		wantMsg string
		out     string
	}{
		{name: "strips the seal of a reply, forges the body", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if !toServer && sealed(t, f, socket.TypeReply) {
					return frame(t, f, func(m *socket.Message) {
						m.Meta.Del(secure.MetaKey)
						m.BodyCodec, m.Payload = codec.JSONID, []byte(`"forged"`)
					})
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "not sealed"},
		{name: "strips the seal of an error reply, forges the status", method: "/fail",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if !toServer && sealed(t, f, socket.TypeReply) {
					return frame(t, f, func(m *socket.Message) {
						m.Meta.Del(secure.MetaKey)
						m.Status, m.Payload = tp.NewStatus(tp.CodeUnauthorized, "forged", nil), nil
					})
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "cannot be trusted"},
		{name: "changes a sealed reply's status", method: "/fail",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if !toServer && sealed(t, f, socket.TypeReply) {
					return frame(t, f, func(m *socket.Message) { m.Status = tp.NewStatus(tp.CodeNotFound, "forged", nil) })
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "turns a sealed reply into an error", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if !toServer && sealed(t, f, socket.TypeReply) {
					return frame(t, f, func(m *socket.Message) { m.Status = tp.NewStatus(tp.CodeUnauthorized, "forged", nil) })
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "adds meta to a sealed call", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if toServer && sealed(t, f, socket.TypeCall) {
					return frame(t, f, func(m *socket.Message) { m.Meta.Set("role", "admin") })
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "changes a sealed call's codec", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if toServer && sealed(t, f, socket.TypeCall) {
					return frame(t, f, func(m *socket.Message) { m.BodyCodec = codec.PlainID })
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "sends a sealed call to another method", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if toServer && sealed(t, f, socket.TypeCall) {
					return frame(t, f, func(m *socket.Message) { m.ServiceMethod = "/vault/open" })
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "flips a bit of a sealed call", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if toServer && sealed(t, f, socket.TypeCall) {
					f[len(f)-1] ^= 1
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "flips a bit of a sealed reply", method: "/echo",
			edit: func(t *testing.T, toServer bool, f []byte) []byte {
				if !toServer && sealed(t, f, socket.TypeReply) {
					f[len(f)-1] ^= 1
				}
				return f
			}, want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "touches nothing", method: "/echo", edit: func(t *testing.T, toServer bool, f []byte) []byte { return f }, out: secret + " (echoed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, secure.Config{Identity: srvKey})
			addr := tptest.NewFrameRelay(t, tptest.Serve(t, srv), func(toServer bool, f []byte) [][]byte {
				return [][]byte{tt.edit(t, toServer, f)}
			})
			sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Trust: []ed25519.PublicKey{srvPub}})), addr)
			before := served.Load()
			var out string
			err := sess.Call(context.Background(), tt.method, secret, &out, secure.WithSecure()).Err()
			if tp.CodeOf(err) != tt.want || err != nil && !strings.Contains(err.Error(), tt.wantMsg) || out != tt.out {
				t.Fatalf("got %q, %v; want %q, %v with %q", out, err, tt.out, tt.want, tt.wantMsg)
			}
			if tt.name == "adds meta to a sealed call" && served.Load() != before {
				t.Fatal("the handler ran a call with forged meta")
			}
		})
	}
}

var noted atomic.Int64

func Count(ctx tp.PushCtx, s *string) *tp.Status {
	noted.Add(1)
	return nil
}

// A relay that sends every sealed message twice: each runs once.
func TestReplayOnTheConnection(t *testing.T) {
	srv := newServer(t, secure.Config{Key: shared})
	srv.RoutePushFunc(Count)
	addr := tptest.NewFrameRelay(t, tptest.Serve(t, srv), func(toServer bool, f []byte) [][]byte {
		if m := peek(t, f); toServer && m.Meta.Get(secure.MetaKey) != "" {
			return [][]byte{f, f}
		}
		return [][]byte{f}
	})
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Key: shared})), addr)
	before, pushes := served.Load(), noted.Load()
	for range 5 {
		if err := sess.Push(context.Background(), "/count", "x", secure.WithSecure()); err != nil {
			t.Fatal(err)
		}
		var out string
		if err := sess.Call(context.Background(), "/echo", "x", &out, secure.WithSecure()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A plaintext round trip after them: the duplicates were all read.
	if err := sess.Call(context.Background(), "/echo", "x", nil).Err(); err != nil {
		t.Fatal(err)
	}
	if got := served.Load() - before; got != 6 {
		t.Fatalf("5 sealed calls and 1 plain, each sent twice, ran %d times", got)
	}
	if got := noted.Load() - pushes; got != 5 {
		t.Fatalf("5 sealed pushes, each sent twice, ran %d times", got)
	}
}

// A recording of a whole connection, played again on a new one: the
// server refuses it before serving anything.
func TestReplayOnANewConnection(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			srv := newServer(t, mode.srv)
			srv.RoutePushFunc(Count)
			srvAddr := tptest.Serve(t, srv)
			var (
				mu       sync.Mutex
				recorded [][]byte
			)
			addr := tptest.NewFrameRelay(t, srvAddr, func(toServer bool, f []byte) [][]byte {
				if toServer {
					mu.Lock()
					recorded = append(recorded, f)
					mu.Unlock()
				}
				return [][]byte{f}
			})
			sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, mode.cli)), addr)
			before := noted.Load()
			if err := sess.Push(context.Background(), "/count", "x", secure.WithSecure()); err != nil {
				t.Fatal(err)
			}
			tptest.WaitFor(t, "the push", func() bool { return noted.Load() == before+1 })

			conn, err := net.Dial("tcp", srvAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			mu.Lock()
			for _, f := range recorded {
				conn.Write(f)
			}
			mu.Unlock()
			// The server answers the replayed exchange, then refuses it
			// and closes the connection.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			// Closed with data unread, the connection may end in a reset.
			if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the server did not close the replayed connection: %v", err)
			}
			if got := noted.Load(); got != before+1 {
				t.Fatalf("the replayed push ran: %d", got-before)
			}
		})
	}
}

// auth's credential goes through the seal: a Bearer after secure sends
// it sealed, and an eavesdropper on the path never sees it.
func TestCredentialIsSealed(t *testing.T) {
	for _, authFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("auth added first: ", authFirst), func(t *testing.T) { credentialIsSealed(t, authFirst) })
	}
}

func credentialIsSealed(t *testing.T, authFirst bool) {
	const token = "the-one-token-0xdeadbeef"
	var got atomic.Value
	order := func(sec, a tp.Plugin) []tp.Plugin {
		if authFirst {
			return []tp.Plugin{a, sec}
		}
		return []tp.Plugin{sec, a}
	}
	srv := tptest.NewPeer(t, tp.PeerConfig{}, order(mustNew(t, secure.Config{Identity: srvKey}), auth.NewChecker(func(s *tp.Session, credential string) error {
		got.Store(credential)
		if !auth.Equal(credential, token) {
			return tp.NewStatus(tp.CodeUnauthorized, "unknown token", nil)
		}
		return nil
	}))...)
	srv.RouteCallFunc(Echo)
	relay := tptest.NewRelay(t, tptest.Serve(t, srv))
	bearer := func(token string) []tp.Plugin {
		return order(mustNew(t, secure.Config{Trust: []ed25519.PublicKey{srvPub}}), auth.NewBearer(func(*tp.Session) string { return token }))
	}
	cli := tptest.NewPeer(t, tp.PeerConfig{}, bearer(token)...)
	sess := tptest.Dial(t, cli, relay.Addr)
	if !sess.Sealed() {
		t.Fatal("the dialer's handshake is not sealed")
	}
	if err := sess.Call(context.Background(), "/echo", "x", nil).Err(); err != nil {
		t.Fatal(err)
	}
	if got.Load() != token {
		t.Fatalf("the checker saw %q", got.Load())
	}
	if bytes.Contains(relay.Seen(), []byte("deadbeef")) {
		t.Fatal("the credential crossed in clear")
	}
	// A wrong token is refused, through the seal.
	cli2 := tptest.NewPeer(t, tp.PeerConfig{}, bearer("wrong")...)
	if _, err := cli2.Dial(context.Background(), relay.Addr); tp.CodeOf(err) != tp.CodeUnauthorized {
		t.Fatalf("a wrong token: %v", err)
	}
}

// farConn is a loopback connection that claims a remote address elsewhere.
type farConn struct{ net.Conn }

func (farConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 9090} }

// Over a connection that is not loopback, a Bearer sends its credential
// only when secure proved the other end: an unauthenticated seal could be
// a peer in the middle's.
func TestBearerNeedsAProvedSeal(t *testing.T) {
	far := func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return farConn{c}, nil
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			srv := newServer(t, mode.srv, auth.NewChecker(func(*tp.Session, string) error { return nil }))
			bearer := auth.NewBearer(func(*tp.Session) string { return "token" })
			cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: far}, mustNew(t, mode.cli), bearer)
			_, err := cli.Dial(context.Background(), tptest.Serve(t, srv))
			if want := mode.name != "unauthenticated"; (err == nil) != want {
				t.Fatalf("dial: %v; want success %v", err, want)
			}
			if err != nil && !strings.Contains(err.Error(), "in clear") {
				t.Fatalf("the refusal does not say why: %v", err)
			}
		})
	}
}

// A redial runs a new exchange: new keys, the old counters forgotten, and
// the credential after it sealed again.
func TestRedialExchangesAgain(t *testing.T) {
	var checks atomic.Int64
	srv := newServer(t, secure.Config{Identity: srvKey}, auth.NewChecker(func(*tp.Session, string) error {
		checks.Add(1)
		return nil
	}))
	addr := tptest.Serve(t, srv)
	cli := tptest.NewPeer(t, tp.PeerConfig{RedialTimes: 3},
		mustNew(t, secure.Config{Trust: []ed25519.PublicKey{srvPub}}), auth.NewBearer(func(*tp.Session) string { return "token" }))
	sess := tptest.Dial(t, cli, addr)
	var out string
	for round := range 3 {
		if err := sess.Call(context.Background(), "/echo", secret, &out, secure.WithSecure()).Err(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !sess.Sealed() {
			t.Fatalf("round %d: not sealed", round)
		}
		for s := range srv.Sessions() {
			s.Close() // the client redials
		}
		tptest.WaitFor(t, "the redial's credential", func() bool { return checks.Load() == int64(round+2) })
	}
}

// A relay that corrupts the exchange, each of its messages in each of a
// few ways: the dial fails with a status, nothing hangs or panics, and
// the server serves nothing.
func TestCorruptExchange(t *testing.T) {
	edits := map[string]func([]byte) []byte{
		"flip first": func(p []byte) []byte { p[0] ^= 1; return p },
		"flip flags": func(p []byte) []byte { p[1] ^= flagsAll; return p },
		"flip last":  func(p []byte) []byte { p[len(p)-1] ^= 1; return p },
		"truncate":   func(p []byte) []byte { return p[:len(p)/2] },
		"extend":     func(p []byte) []byte { return append(p, 0) },
		"empty":      func(p []byte) []byte { return nil },
		"zero key":   func(p []byte) []byte { return append(p[:min(2, len(p))], make([]byte, max(0, len(p)-2))...) },
	}
	for _, msg := range []struct {
		name     string
		toServer bool
		typ      socket.Type
	}{{"dialer's key", true, socket.TypeCall}, {"acceptor's answer", false, socket.TypeReply}, {"dialer's proof", true, socket.TypePush}} {
		for name, edit := range edits {
			t.Run(msg.name+"/"+name, func(t *testing.T) {
				srv := newServer(t, modes[4].srv)
				addr := tptest.NewFrameRelay(t, tptest.Serve(t, srv), func(toServer bool, f []byte) [][]byte {
					if m := peek(t, f); toServer == msg.toServer && m.Type == msg.typ && m.ServiceMethod == secure.ServiceMethod {
						f = frame(t, f, func(m *socket.Message) { m.Payload = edit(bytes.Clone(m.Payload)) })
					}
					return [][]byte{f}
				})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				before := served.Load()
				sess, err := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, modes[4].cli)).Dial(ctx, addr)
				if err == nil {
					err = sess.Call(ctx, "/echo", "x", nil).Err()
				}
				if err == nil || ctx.Err() != nil {
					t.Fatalf("got %v (context: %v)", err, ctx.Err())
				}
				if served.Load() != before {
					t.Fatal("the server served")
				}
			})
		}
	}
}

const flagsAll = 0xff

// A relay that pushes a sealed call's deadline an hour out: the handler's
// context still ends when the caller stops waiting.
func TestRelayCannotExtendTheDeadline(t *testing.T) {
	left := make(chan time.Duration, 1)
	srv := newServer(t, secure.Config{Key: shared})
	tp.HandleCall(srv.Router(), "/deadline", func(ctx tp.CallCtx, _ *string) (string, error) {
		d, ok := ctx.Context().Deadline()
		if !ok {
			left <- -1
		} else {
			left <- time.Until(d)
		}
		return "", nil
	})
	addr := tptest.NewFrameRelay(t, tptest.Serve(t, srv), func(toServer bool, f []byte) [][]byte {
		if m := peek(t, f); toServer && m.Type == socket.TypeCall && m.ServiceMethod == "/deadline" {
			f = frame(t, f, func(m *socket.Message) { m.Deadline = time.Now().Add(time.Hour) })
		}
		return [][]byte{f}
	})
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Key: shared})), addr)
	for _, sealed := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var settings []tp.MessageSetting
		if sealed {
			settings = append(settings, secure.WithSecure())
		}
		err := sess.Call(ctx, "/deadline", "x", nil, settings...).Err()
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		got := <-left
		if sealed && (got <= 0 || got > 2*time.Second) {
			t.Fatalf("sealed: the handler's deadline is %v away; the caller waits 2s", got)
		}
		if !sealed && got < time.Minute { // the control: the relay's edit works
			t.Fatalf("plain: the handler's deadline is %v away; the relay set an hour", got)
		}
	}
}
