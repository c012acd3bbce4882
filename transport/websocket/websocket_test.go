package websocket_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/conformance"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/transport/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func listenTCP(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

func TestConformance(t *testing.T) {
	t.Run("ws", func(t *testing.T) {
		conformance.Run(t, conformance.Transport{
			Listen: func(addr string) (net.Listener, error) {
				ln, err := listenTCP(addr)
				if err != nil {
					return nil, err
				}
				return websocket.Listen(ln, websocket.Options{}), nil
			},
			Dialer: websocket.Dialer(websocket.DialOptions{}),
			Addr:   func(ln net.Listener) string { return "ws://" + ln.Addr().String() + "/tp" },
		})
	})
	t.Run("wss", func(t *testing.T) {
		srvConf, cliConf := conformance.SelfSigned(t)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cliConf}}
		t.Cleanup(client.CloseIdleConnections)
		conformance.Run(t, conformance.Transport{
			Listen: func(addr string) (net.Listener, error) {
				ln, err := listenTCP(addr)
				if err != nil {
					return nil, err
				}
				return websocket.Listen(tls.NewListener(ln, srvConf), websocket.Options{}), nil
			},
			Dialer: websocket.Dialer(websocket.DialOptions{HTTPClient: client}),
			Addr:   func(ln net.Listener) string { return "wss://" + ln.Addr().String() + "/tp" },
		})
	})
}

func Add(_ tp.CallCtx, n *int) (int, error) { return *n + 1, nil }

// serveMux serves a web page and tp on one port.
func serveMux(t *testing.T, opts websocket.Options) (*tp.Peer, string) {
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/add", Add)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "a web app") })
	mux.Handle("/tp", websocket.Handler(srv, opts))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return srv, ln.Addr().String()
}

// One port serves a web app and tp.
func TestHandlerBesideAWebApp(t *testing.T) {
	_, addr := serveMux(t, websocket.Options{})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "a web app" {
		t.Fatalf("the web app: %q", body)
	}
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{})})
	sess := tptest.Dial(t, cli, "ws://"+addr+"/tp")
	if n, err := tp.Call[int](context.Background(), sess, "/add", 1); err != nil || n != 2 {
		t.Fatalf("over the mux: %d, %v", n, err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// What a hostile or confused client sends ends its own connection with
// a WebSocket status saying why, and the server serves the next client.
func TestBadInput(t *testing.T) {
	_, addr := serveMux(t, websocket.Options{MessageLimit: 64 << 10})
	for _, tt := range []struct {
		name   string
		dial   *cws.DialOptions
		send   func(c *cws.Conn) error
		status cws.StatusCode // 0: refused at the handshake
	}{
		{"a text message", &cws.DialOptions{Subprotocols: []string{"tp"}},
			func(c *cws.Conn) error { return c.Write(context.Background(), cws.MessageText, []byte("hello")) }, cws.StatusUnsupportedData},
		{"an oversized message", &cws.DialOptions{Subprotocols: []string{"tp"}},
			func(c *cws.Conn) error {
				return c.Write(context.Background(), cws.MessageBinary, make([]byte, 128<<10))
			}, cws.StatusMessageTooBig}, // or a normal closure: tp closes on the read error first
		{"no tp subprotocol", &cws.DialOptions{}, nil, cws.StatusPolicyViolation},
		{"a page of another origin", &cws.DialOptions{Subprotocols: []string{"tp"}, HTTPHeader: http.Header{"Origin": {"http://evil.example"}}}, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, resp, err := cws.Dial(ctx, "ws://"+addr+"/tp", tt.dial)
			if tt.status == 0 {
				if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("want a 403 at the handshake: %v, %v", resp, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if tt.send != nil {
				tt.send(c)
			}
			for { // read what the server sends (its hello) until it closes
				if _, _, err = c.Read(ctx); err != nil {
					break
				}
			}
			got := cws.CloseStatus(err)
			if tt.status == cws.StatusMessageTooBig && got == cws.StatusNormalClosure {
				got = tt.status // tp, closing on the read error, may have won the race
			}
			if got != tt.status {
				t.Fatalf("closed with %v (%v), want %v", got, err, tt.status)
			}
		})
	}
	// The server is unharmed.
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{})})
	sess := tptest.Dial(t, cli, "ws://"+addr+"/tp")
	if n, err := tp.Call[int](context.Background(), sess, "/add", 1); err != nil || n != 2 {
		t.Fatalf("after the bad clients: %d, %v", n, err)
	}
}

// A server that does not speak tp: the dial fails, saying so.
func TestDialNotTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := cws.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Close(cws.StatusNormalClosure, "")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{})})
	if _, err := cli.Dial(context.Background(), "ws://"+ln.Addr().String()+"/"); err == nil || !strings.Contains(err.Error(), "does not speak tp") {
		t.Fatalf("dialing a WebSocket server that is not tp: %v", err)
	}
}

// TestAcceptEndsWithItsListener: when the listener under a Listener is
// closed by its owner or fails, Accept returns that error rather than
// waiting forever, so the Peer serving it returns.
func TestAcceptEndsWithItsListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := websocket.Listen(tcp, websocket.Options{})
	defer l.Close()
	got := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		got <- err
	}()
	tcp.Close()
	select {
	case err := <-got:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept returned %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still waits after its listener was closed")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a later Accept returned %v", err)
	}
}

// countingConn counts the writes made on a dialed TCP connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func Size(_ tp.CallCtx, b *[]byte) (int, error) { return len(*b), nil }

// TestDialerWritesAMessageAtOnce: a client masks what it sends through
// coder/websocket's 4 KiB buffer; a 256 KiB call must still reach the
// network in one write, not sixty-four.
func TestDialerWritesAMessageAtOnce(t *testing.T) {
	srv, addr := serveMux(t, websocket.Options{MessageLimit: 1 << 20})
	tp.HandleCall(srv.Router(), "/size", Size)
	var writes atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})})
	sess := tptest.Dial(t, cli, "ws://"+addr+"/tp")
	if _, err := tp.Call[int](context.Background(), sess, "/size", []byte("warm")); err != nil {
		t.Fatal(err) // and the session's setup is all written
	}
	body := make([]byte, 256<<10)
	for range 3 {
		before := writes.Load()
		if n, err := tp.Call[int](context.Background(), sess, "/size", body); err != nil || n != len(body) {
			t.Fatalf("call: %d, %v", n, err)
		}
		if w := writes.Load() - before; w != 1 {
			t.Fatalf("a 256 KiB call took %d writes, want 1", w)
		}
	}
}
