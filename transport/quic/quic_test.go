package quic_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/conformance"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"github.com/seed-a9a850dd/tp/transport/quic"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

func TestConformance(t *testing.T) {
	srvConf, cliConf := conformance.SelfSigned(t)
	conformance.Run(t, conformance.Transport{
		Listen: func(addr string) (net.Listener, error) {
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			return quic.Listen(addr, srvConf, nil)
		},
		Dialer: quic.Dialer(cliConf, nil),
		Addr:   func(ln net.Listener) string { return ln.Addr().String() },
	})
}

func Add(_ tp.CallCtx, n *int) (int, error) { return *n + 1, nil }

func server(t *testing.T) (string, *tls.Config) {
	srvConf, cliConf := conformance.SelfSigned(t)
	ln, err := quic.Listen("127.0.0.1:0", srvConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/add", Add)
	go srv.Serve(ln)
	return ln.Addr().String(), cliConf
}

// Bad peers get a clear error and a clean close; the server serves the
// next client.
func TestBadPeers(t *testing.T) {
	addr, cliConf := server(t)
	t.Run("another ALPN", func(t *testing.T) {
		conf := cliConf.Clone()
		conf.NextProtos = []string{"h3"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := quicgo.DialAddr(ctx, addr, conf, nil)
		if err == nil || !strings.Contains(err.Error(), "application protocol") {
			t.Fatalf("a handshake offering h3: %v", err)
		}
	})
	t.Run("a second stream, past the limit of one", func(t *testing.T) {
		conf := cliConf.Clone()
		conf.NextProtos = []string{quic.ALPN}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := quicgo.DialAddr(ctx, addr, conf, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseWithError(0, "")
		if _, err := c.OpenStream(); err != nil {
			t.Fatal(err)
		}
		// A second stream is over the peer's limit of one.
		if _, err := c.OpenStream(); err == nil {
			t.Fatal("a second stream was allowed")
		}
	})
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: quic.Dialer(cliConf, nil)})
	sess := tptest.Dial(t, cli, addr)
	if n, err := tp.Call[int](context.Background(), sess, "/add", 1); err != nil || n != 2 {
		t.Fatalf("after the bad peers: %d, %v", n, err)
	}
	if st := sess.TLS(); st != nil {
		t.Logf("TLS: %v", st.Version)
	}
}

func TestListenNeedsACertificate(t *testing.T) {
	if _, err := quic.Listen("127.0.0.1:0", &tls.Config{}, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Listen without a certificate: %v", err)
	}
}

// A peer that connects and never opens or writes a stream is closed by
// the server within its handshake timeout, and holds nothing after.
func TestSilentPeerIsClosed(t *testing.T) {
	srvConf, cliConf := conformance.SelfSigned(t)
	ln, err := quic.Listen("127.0.0.1:0", srvConf, &quicgo.Config{HandshakeIdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	go srv.Serve(ln)
	conf := cliConf.Clone()
	conf.NextProtos = []string{quic.ALPN}
	for _, opens := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := quicgo.DialAddr(ctx, ln.Addr().String(), conf, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if opens { // a stream, never written: the server never sees it
			if _, err := c.OpenStream(); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		select {
		case <-c.Context().Done():
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("closed after %v", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a silent peer (stream opened: %v) was not closed", opens)
		}
		if srv.CountSession() != 0 {
			t.Fatalf("%d sessions for silent peers", srv.CountSession())
		}
	}
}

// A client moves its connection to another UDP socket (a changed address,
// as when a phone leaves Wi-Fi): the session goes on, and the server sees
// the new address.
func TestConnectionMigration(t *testing.T) {
	srvConf, cliConf := conformance.SelfSigned(t)
	ln, err := quic.Listen("127.0.0.1:0", srvConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := tptest.NewPeer(t, tp.PeerConfig{})
	tp.HandleCall(srv.Router(), "/add", Add)
	tp.HandleCall(srv.Router(), "/whoami", func(ctx tp.CallCtx, _ *int) (string, error) { return ctx.Session().RemoteAddr().String(), nil })
	go srv.Serve(ln)

	var conn *quic.Conn
	d := quic.Dialer(cliConf, nil)
	cli := tptest.NewPeer(t, tp.PeerConfig{Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d(ctx, network, addr)
		if err == nil {
			conn = c.(*quic.Conn)
		}
		return c, err
	}})
	sess := tptest.Dial(t, cli, ln.Addr().String())
	before, err := tp.Call[string](context.Background(), sess, "/whoami", 0)
	if err != nil {
		t.Fatal(err)
	}

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &quicgo.Transport{Conn: udp, ConnectionIDLength: 4}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	path, err := conn.QUIC().AddPath(tr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := path.Probe(ctx); err != nil {
		t.Fatalf("probing the new path: %v", err)
	}
	if err := path.Switch(); err != nil {
		t.Fatalf("switching to it: %v", err)
	}
	for i := range 20 {
		if n, err := tp.Call[int](context.Background(), sess, "/add", i); err != nil || n != i+1 {
			t.Fatalf("call %d after the move: %d, %v", i, n, err)
		}
	}
	after, err := tp.Call[string](context.Background(), sess, "/whoami", 0)
	if err != nil {
		t.Fatal(err)
	}
	if after != udp.LocalAddr().String() || after == before {
		t.Fatalf("the server saw %s before and %s after the move to %s", before, after, udp.LocalAddr())
	}
}
