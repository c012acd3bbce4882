package overloader_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/overloader"
)

func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{}, overloader.New(overloader.Config{SessionRate: 1, SessionBurst: 2}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Ping)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())
	for range 3 {
		fmt.Println(sess.Call(context.Background(), "/ping", nil, nil).Status().Code())
	}
	// Output:
	// ok
	// ok
	// overloaded
}
