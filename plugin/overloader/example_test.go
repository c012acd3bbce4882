package overloader_test

import (
	"context"
	"fmt"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/overloader"
)

func Example() {
	srv := tp.NewPeer(tp.PeerConfig{}, overloader.New(overloader.Config{SessionRate: 1, SessionBurst: 2}))
	defer srv.Close()
	srv.RouteCallFunc(Ping)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli := tp.NewPeer(tp.PeerConfig{})
	defer cli.Close()
	sess, _ := cli.Dial(ln.Addr().String())
	for range 3 {
		fmt.Println(sess.Call(context.Background(), "/ping", nil, nil).Status().Code())
	}
	// Output:
	// ok
	// ok
	// overloaded
}
