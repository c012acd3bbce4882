// Command meta passes metadata beside the body in both directions, like
// HTTP headers.
//
//	go run ./examples/meta
package main

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
)

// Echo returns its argument, and answers the "request-id" meta with a
// "handled-by" meta of its own.
func Echo(ctx tp.CallCtx, arg *string) (string, *tp.Status) {
	fmt.Printf("server: request-id=%s, tags=%v, from %s\n",
		ctx.PeekMeta("request-id"), ctx.InputMeta().Values("tag"), ctx.RealIP())
	ctx.SetMeta("handled-by", "server-1")
	return *arg, nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	var out string
	cmd := sess.Call(context.Background(), "/echo", "hi", &out,
		tp.WithSetMeta("request-id", "42"), tp.WithAddMeta("tag", "a"), tp.WithAddMeta("tag", "b"))
	if err := cmd.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("client: reply %q, handled-by=%s\n", out, cmd.InputMeta().Get("handled-by"))
}
