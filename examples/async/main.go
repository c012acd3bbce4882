// Command async sends many calls without waiting for each, and collects
// the replies as they come.
//
//	go run ./examples/async
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Square returns its argument squared after a short delay.
func Square(ctx tp.CallCtx, arg *int) (int, *tp.Status) {
	time.Sleep(10 * time.Millisecond)
	return *arg * *arg, nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Square)
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

	const n = 10
	done := make(chan *tp.CallCmd, n) // buffered: the peer never blocks on it
	results := make([]int, n)
	start := time.Now()
	for i := range n {
		sess.AsyncCall(context.Background(), "/square", i, &results[i], done)
	}
	for range n {
		if err := (<-done).Err(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("squares:", results)
	fmt.Println("10 calls of 10ms each overlapped:", time.Since(start) < 90*time.Millisecond)
}
