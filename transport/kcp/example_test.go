package kcp_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/heartbeat"
	"github.com/seed-a9a850dd/tp/transport/kcp"
)

func Greet(_ tp.CallCtx, name *string) (string, error) { return "hello over KCP, " + *name, nil }

// A server serves a KCP listener; a client dials it. Both run the
// heartbeat, which is how a KCP session learns its peer is gone.
func Example() {
	ln, err := kcp.Listen("127.0.0.1:0", kcp.Config{})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := tp.NewPeer(tp.PeerConfig{}, heartbeat.New(heartbeat.Config{Interval: time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tp.HandleCall(srv.Router(), "/greet", Greet)
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: kcp.Dialer(kcp.Config{})}, heartbeat.New(heartbeat.Config{Interval: time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	greeting, err := tp.Call[string](context.Background(), sess, "/greet", "gopher")
	fmt.Println(greeting, err)
	// Output:
	// hello over KCP, gopher <nil>
}
