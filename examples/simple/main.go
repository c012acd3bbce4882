// Command simple runs a server and a client in one process: the client
// calls /math/add and prints the sum.
//
//	go run ./examples/simple
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Math serves /math/add.
type Math struct{ tp.CallCtx }

// Add returns the sum of its argument.
func (m *Math) Add(arg *[]int) (int, *tp.Status) {
	sum := 0
	for _, v := range *arg {
		sum += v
	}
	return sum, nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCall(new(Math))
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := cli.Dial(ctx, ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	var sum int
	if err := sess.Call(ctx, "/math/add", []int{1, 2, 3, 4}, &sum).Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("1+2+3+4 =", sum)
}
