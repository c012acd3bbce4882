// Command subroute groups routes under a prefix with a plugin of their
// own, and answers calls no route serves with an unknown-call handler.
//
//	go run ./examples/subroute
package main

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
)

// Users serves /v2/users/...
type Users struct{ tp.CallCtx }

// Get returns a user's name by id.
func (u *Users) Get(id *int) (string, *tp.Status) {
	if *id != 1 {
		return "", tp.NewStatus(tp.CodeNotFound, fmt.Sprintf("no user %d", *id), nil)
	}
	return "ada", nil
}

// requireToken refuses calls without a "token" meta before their body is read.
type requireToken struct{}

func (requireToken) Name() string { return "require-token" }

func (requireToken) PreReadCallBody(ctx tp.ReadCtx) error {
	if ctx.Input().Meta.Get("token") == "" {
		return tp.NewStatus(tp.CodeUnauthorized, "this route needs a token meta", nil)
	}
	return nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.SubRoute("v2", requireToken{}).RouteCall(new(Users))
	srv.SetUnknownCall(func(ctx tp.UnknownCallCtx) (any, error) {
		return "nothing serves " + ctx.ServiceMethod(), nil
	})
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
	ctx := context.Background()
	var name, answer string
	fmt.Println("without a token:", sess.Call(ctx, "/v2/users/get", 1, &name).Status())
	if err := sess.Call(ctx, "/v2/users/get", 1, &name, tp.WithSetMeta("token", "t0k3n")).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("with a token:", name)
	fmt.Println("user 2:", sess.Call(ctx, "/v2/users/get", 2, &name, tp.WithSetMeta("token", "t0k3n")).Status())
	if err := sess.Call(ctx, "/v3/anything", nil, &answer).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("unknown:", answer)
}
