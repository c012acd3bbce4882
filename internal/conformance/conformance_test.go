package conformance_test

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"

	"github.com/seed-a9a850dd/tp/internal/conformance"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// The transports of the core: TCP and unix sockets, and TCP with TLS
// through a listener and a dialer, as any transport plugs in.
func TestCoreTransports(t *testing.T) {
	var d net.Dialer
	t.Run("tcp", func(t *testing.T) {
		conformance.Run(t, conformance.Transport{
			Listen: func(addr string) (net.Listener, error) {
				if addr == "" {
					addr = "127.0.0.1:0"
				}
				return net.Listen("tcp", addr)
			},
			Dialer: d.DialContext,
			Addr:   func(ln net.Listener) string { return ln.Addr().String() },
		})
	})
	t.Run("unix", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tp.sock")
		conformance.Run(t, conformance.Transport{
			Listen: func(string) (net.Listener, error) { return net.Listen("unix", path) },
			Dialer: func(ctx context.Context, _, addr string) (net.Conn, error) { return d.DialContext(ctx, "unix", addr) },
			Addr:   func(ln net.Listener) string { return ln.Addr().String() },
		})
	})
	t.Run("tls", func(t *testing.T) {
		srvConf, cliConf := conformance.SelfSigned(t)
		conformance.Run(t, conformance.Transport{
			Listen: func(addr string) (net.Listener, error) {
				if addr == "" {
					addr = "127.0.0.1:0"
				}
				return tls.Listen("tcp", addr, srvConf)
			},
			Dialer: (&tls.Dialer{Config: cliConf}).DialContext,
			Addr:   func(ln net.Listener) string { return ln.Addr().String() },
		})
	})
}
