package secure_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/plugin/secure"
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

// tamper flips the last byte of every body it sends: a hook after secure's.
type tamper struct{}

func (tamper) Name() string { return "tamper" }
func (tamper) PreWriteCall(c tp.WriteCtx) error {
	flip(c)
	return nil
}
func (tamper) PreWriteReply(c tp.WriteCtx) error {
	flip(c)
	return nil
}
func flip(c tp.WriteCtx) {
	if p := c.Output().Payload; len(p) > 0 && c.Output().Meta.Get(secure.MetaKey) != "" {
		p[len(p)-1] ^= 1
	}
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

func start(t *testing.T, srvCfg, cliCfg secure.Config, srvExtra, cliExtra []tp.Plugin) setup {
	t.Helper()
	sec := mustNew(t, srvCfg)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, append([]tp.Plugin{sec}, srvExtra...)...)
	srv.RouteCallFunc(Echo)
	srv.RoutePushFunc(Note)
	srv.RouteCall(new(Vault), sec.Route())
	relay := tptest.NewRelay(t, tptest.Serve(t, srv))
	cli := tptest.NewPeer(t, tp.PeerConfig{}, append([]tp.Plugin{mustNew(t, cliCfg)}, cliExtra...)...)
	cli.RouteCallFunc(Echo) // so the server can call back
	return setup{tptest.Dial(t, cli, relay.Addr), relay, srv}
}

func TestSecure(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, keys := range []struct {
		name     string
		srv, cli secure.Config
	}{
		{"negotiated", secure.Config{}, secure.Config{}},
		{"configured", secure.Config{Key: key}, secure.Config{Key: key}},
	} {
		t.Run(keys.name, func(t *testing.T) {
			s := start(t, keys.srv, keys.cli, nil, nil)
			var out string
			if err := s.sess.Call(context.Background(), "/echo", secret, &out, secure.WithSecure()).Err(); err != nil || out != secret+" (echoed)" {
				t.Fatalf("encrypted call: %q %v", out, err)
			}
			if err := s.sess.Push(context.Background(), "/note", secret, secure.WithSecure()); err != nil {
				t.Fatal(err)
			}
			if got := <-pushed; got != secret {
				t.Fatalf("encrypted push: %q", got)
			}
			// The other way: the server calls the client.
			var back *tp.Session
			for sess := range s.srv.Sessions() {
				back = sess
				break
			}
			if err := back.Call(context.Background(), "/echo", secret, &out, secure.WithSecure()).Err(); err != nil || out != secret+" (echoed)" {
				t.Fatalf("encrypted call from the server: %q %v", out, err)
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

func TestSecureRefusals(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
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
		{name: "tampered call", cliExtra: []tp.Plugin{tamper{}}, method: "/echo", settings: []tp.MessageSetting{secure.WithSecure()},
			want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "tampered reply", srvExtra: []tp.Plugin{tamper{}}, method: "/echo", settings: []tp.MessageSetting{secure.WithSecure()},
			want: tp.CodeBadMessage, wantMsg: "fails authentication", handlerRuns: true},
		{name: "another key", srv: secure.Config{Key: key}, cli: secure.Config{Key: other}, method: "/echo", settings: []tp.MessageSetting{secure.WithSecure()},
			want: tp.CodeBadMessage, wantMsg: "fails authentication"},
		{name: "plaintext to a guarded route", method: "/vault/open", want: tp.CodeUnauthorized, wantMsg: "takes only encrypted"},
		{name: "encrypted to a guarded route", method: "/vault/open", settings: []tp.MessageSetting{secure.WithSecure()}},
		{name: "all", cli: secure.Config{All: true}, method: "/vault/open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

func TestBadKey(t *testing.T) {
	if _, err := secure.New(secure.Config{Key: []byte("short")}); err == nil || !strings.Contains(err.Error(), "Config.Key") {
		t.Fatalf("a 5-byte key: %v", err)
	}
}

// A dialer without the plugin cannot talk to a negotiating peer: its Dial
// fails, saying why.
func TestNegotiationNeedsBothEnds(t *testing.T) {
	srv := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{}))
	srv.RouteCallFunc(Echo)
	_, err := tptest.NewPeer(t, tp.PeerConfig{}).Dial(context.Background(), tptest.Serve(t, srv))
	if tp.CodeOf(err) != tp.CodeFailedPrecondition || !strings.Contains(err.Error(), "add the secure plugin") {
		t.Fatalf("got %v", err)
	}
}

// tamperReplies relays TCP connections to target and rewrites every
// sealed REPLY coming back: it strips the seal and puts a body of its own,
// as a man in the middle without the key would.
func tamperReplies(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				return
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(b, a); b.Close() }()
			go func() {
				defer wg.Done()
				defer a.Close()
				p := rawproto.New()()
				for {
					head := make([]byte, 4)
					if _, err := io.ReadFull(b, head); err != nil {
						return
					}
					frame := make([]byte, 4+binary.BigEndian.Uint32(head))
					copy(frame, head)
					if _, err := io.ReadFull(b, frame[4:]); err != nil {
						return
					}
					m := new(socket.Message)
					if err := socket.Unpack(p, frame, m, 1<<20); err == nil && m.Type == socket.TypeReply && m.Meta.Get(secure.MetaKey) != "" {
						m.Meta.Del(secure.MetaKey)
						m.BodyCodec, m.Payload = codec.JSONID, []byte(`"forged"`)
						frame, _ = socket.Pack(p, nil, m)
					}
					if _, err := a.Write(frame); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A sealed call accepts only a sealed reply: a relay without the key that
// strips the seal and forges the body is caught.
func TestSealedCallRefusesUnsealedReply(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	srv := tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Key: key}))
	srv.RouteCallFunc(Echo)
	addr := tamperReplies(t, tptest.Serve(t, srv))
	sess := tptest.Dial(t, tptest.NewPeer(t, tp.PeerConfig{}, mustNew(t, secure.Config{Key: key})), addr)
	var out string
	err := sess.Call(context.Background(), "/echo", secret, &out, secure.WithSecure()).Err()
	if tp.CodeOf(err) != tp.CodeBadMessage || out == "forged" {
		t.Fatalf("a forged plaintext reply to a sealed call: %q, %v", out, err)
	}
	// The control: a plaintext call through the same relay is untouched.
	if err := sess.Call(context.Background(), "/echo", "plain", &out).Err(); err != nil || out != "plain (echoed)" {
		t.Fatalf("a plaintext call through the relay: %q, %v", out, err)
	}
}
