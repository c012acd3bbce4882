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
func Greet(ctx tp.CallCtx, arg *string) (string, error) {
	var name string
	if err := ctx.Session().Call(ctx.Context(), "/whoami", nil, &name).Err(); err != nil {
		return "", err
	}
	return *arg + ", " + name + "!", nil
}

// Whoami is served by the client.
func Whoami(ctx tp.CallCtx, arg *struct{}) (string, *tp.Status) {
	return "client-7", nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Greet)
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
	cli.RouteCallFunc(Whoami)
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	var greeting string
	if err := sess.Call(context.Background(), "/greet", "Hello", &greeting).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(greeting)
}
