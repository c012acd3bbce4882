package proxy_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/proxy"
)

func Greet(ctx tp.CallCtx, name *string) (string, *tp.Status) { return "hello " + *name, nil }

func listen(p *tp.Peer) string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go p.Serve(ln)
	return ln.Addr().String()
}

func Example() {
	backend, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	backend.RouteCallFunc(Greet)

	// The gateway serves nothing itself: it forwards to the backend.
	var upstream *tp.Session
	gateway, err := tp.NewPeer(tp.PeerConfig{}, proxy.New(func(*proxy.Label) proxy.Forwarder { return upstream }))
	if err != nil {
		log.Fatal(err)
	}
	defer gateway.Close()
	upstream, _ = gateway.Dial(context.Background(), listen(backend))

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), listen(gateway))
	var out string
	sess.Call(context.Background(), "/greet", "gopher", &out)
	fmt.Println(out)
	// Output: hello gopher
}
