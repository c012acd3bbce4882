package ignorecase_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/ignorecase"
)

func Hello(ctx tp.CallCtx, name *string) (string, *tp.Status) { return "hello " + *name, nil }

func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{}, ignorecase.New())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Hello) // "/hello"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())
	var out string
	sess.Call(context.Background(), "/HELLO", "world", &out)
	fmt.Println(out)
	// Output: hello world
}
