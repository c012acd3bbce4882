package secure_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/secure"
)

type Safe struct{ tp.CallCtx }

func (s *Safe) Open(code *string) (string, *tp.Status) { return "opened with " + *code, nil }

func Example() {
	// The server's identity; its public key is what clients pin.
	serverPub, serverKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		log.Fatal(err)
	}

	srvSec, err := secure.New(secure.Config{Identity: serverKey})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := tp.NewPeer(tp.PeerConfig{}, srvSec)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCall(new(Safe), srvSec.Route()) // /safe/open takes only sealed calls
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	// The client dials only a peer that proves the server's key.
	cliSec, err := secure.New(secure.Config{Trust: []ed25519.PublicKey{serverPub}})
	if err != nil {
		log.Fatal(err)
	}
	cli, err := tp.NewPeer(tp.PeerConfig{}, cliSec)
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}

	var out string
	fmt.Println(sess.Call(context.Background(), "/safe/open", "1234", &out).Err())
	if err := sess.Call(context.Background(), "/safe/open", "1234", &out, secure.WithSecure()).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)
	// Output:
	// secure: "/safe/open" takes only sealed messages; send with secure.WithSecure() (unauthorized)
	// opened with 1234
}
