package secure_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/secure"
)

type Safe struct{ tp.CallCtx }

func (s *Safe) Open(code *string) (string, *tp.Status) { return "opened with " + *code, nil }

func Example() {
	srvSec, _ := secure.New(secure.Config{}) // a key negotiated per session
	srv, err := tp.NewPeer(tp.PeerConfig{}, srvSec)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCall(new(Safe), srvSec.Route()) // /safe/open takes only encrypted calls
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cliSec, _ := secure.New(secure.Config{})
	cli, err := tp.NewPeer(tp.PeerConfig{}, cliSec)
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())

	var out string
	fmt.Println(sess.Call(context.Background(), "/safe/open", "1234", &out).Status())
	sess.Call(context.Background(), "/safe/open", "1234", &out, secure.WithSecure())
	fmt.Println(out)
	// Output:
	// secure: "/safe/open" takes only encrypted messages; send with secure.WithSecure() (unauthorized)
	// opened with 1234
}
