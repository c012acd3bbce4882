package quic_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/transport/quic"
)

func Greet(_ tp.CallCtx, name *string) (string, error) { return "hello over QUIC, " + *name, nil }

// A server serves a QUIC listener; a client dials it with the server's
// certificate trusted.
func Example() {
	serverTLS, roots := exampleCert() // your certificate, and the pool that trusts it
	ln, err := quic.Listen("127.0.0.1:0", serverTLS, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tp.HandleCall(srv.Router(), "/greet", Greet)
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: quic.Dialer(&tls.Config{RootCAs: roots}, nil)})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	greeting, err := tp.Call[string](context.Background(), sess, "/greet", "gopher")
	fmt.Println(greeting, err, sess.RemoteAddr().Network())
	// Output:
	// hello over QUIC, gopher <nil> udp
}

// exampleCert makes a certificate for 127.0.0.1 and a pool trusting it.
func exampleCert() (*tls.Config, *x509.CertPool) {
	srv, cli := conformanceSelfSigned()
	return srv, cli.RootCAs
}
