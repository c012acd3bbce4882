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

// nameKey is each client session's name, for the printout.
var nameKey = tp.NewKey[string]("name")

// Flash prints a headline.
func (n *News) Flash(arg *string) *tp.Status {
	name, _ := nameKey.Get(n.Session())
	fmt.Printf("client %s got: %s\n", name, *arg)
	received.Done()
	return nil
}

func main() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)

	const clients = 3
	for i := range clients {
		cli, err := tp.NewPeer(tp.PeerConfig{})
		if err != nil {
			log.Fatal(err)
		}
		defer cli.Close()
		cli.RoutePush(new(News))
		sess, err := cli.Dial(context.Background(), ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		nameKey.Set(sess, fmt.Sprint(i))
	}
	for srv.CountSession() < clients { // accepted sessions register on their own goroutines
		time.Sleep(time.Millisecond)
	}

	received.Add(clients)
	if err := srv.Broadcast(context.Background(), "/news/flash", "tp 1.0 released", nil); err != nil {
		log.Print(err)
	}
	received.Wait()
	fmt.Println("broadcast reached", clients, "clients")
}
