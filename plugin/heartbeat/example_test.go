package heartbeat_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/heartbeat"
)

// Both ends ping when quiet, and close sessions silent for three intervals.
func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{}, heartbeat.New(heartbeat.Config{Interval: 50 * time.Millisecond}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{}, heartbeat.New(heartbeat.Config{Interval: 50 * time.Millisecond}))
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, st := cli.Dial(context.Background(), ln.Addr().String())
	if st != nil {
		fmt.Println(st)
		return
	}
	time.Sleep(300 * time.Millisecond) // no calls: the pings keep it up
	fmt.Println("healthy after an idle while:", sess.Health())
	// Output: healthy after an idle while: true
}
