// Command push broadcasts a PUSH from a server to every session it holds.
//
//	go run ./examples/push
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// News receives the server's pushes; nothing is replied.
type News struct{ tp.PushCtx }

var received sync.WaitGroup

// Flash prints a headline.
func (n *News) Flash(arg *string) *tp.Status {
	name, _ := n.Swap().Load("name")
	fmt.Printf("client %s got: %s\n", name, *arg)
	received.Done()
	return nil
}

func main() {
	srv := tp.NewPeer(tp.PeerConfig{})
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	const clients = 3
	for i := range clients {
		cli := tp.NewPeer(tp.PeerConfig{})
		defer cli.Close()
		cli.RoutePush(new(News))
		sess, st := cli.Dial(ln.Addr().String())
		if st != nil {
			log.Fatal(st)
		}
		sess.Swap().Store("name", fmt.Sprint(i))
	}
	for srv.CountSession() < clients { // accepted sessions register on their own goroutines
		time.Sleep(time.Millisecond)
	}

	received.Add(clients)
	srv.RangeSession(func(s *tp.Session) bool {
		if st := s.Push(context.Background(), "/news/flash", "tp 1.0 released"); st != nil {
			log.Print(st)
		}
		return true
	})
	received.Wait()
	fmt.Println("broadcast reached", clients, "clients")
}
