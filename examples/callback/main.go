// Command callback shows that both ends are equal: while serving a call,
// the server calls back the client that called it, on the same session.
//
//	go run ./examples/callback
package main

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
)

// Greet is served by the server: it asks the caller for its name first.
func Greet(ctx tp.CallCtx, arg *string) (string, *tp.Status) {
	var name string
	if st := ctx.Session().Call(ctx.Context(), "/whoami", nil, &name).Status(); st != nil {
		return "", st
	}
	return *arg + ", " + name + "!", nil
}

// Whoami is served by the client.
func Whoami(ctx tp.CallCtx, arg *struct{}) (string, *tp.Status) {
	return "client-7", nil
}

func main() {
	srv := tp.NewPeer(tp.PeerConfig{})
	defer srv.Close()
	srv.RouteCallFunc(Greet)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	cli := tp.NewPeer(tp.PeerConfig{})
	defer cli.Close()
	cli.RouteCallFunc(Whoami)
	sess, st := cli.Dial(ln.Addr().String())
	if st != nil {
		log.Fatal(st)
	}
	var greeting string
	if err := sess.Call(context.Background(), "/greet", "Hello", &greeting).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(greeting)
}
