package etcd_test

import (
	"context"
	"log"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/discovery/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A server registers itself under "math" while it serves; a client finds
// every server of "math" and spreads its calls over them. (It needs an
// etcd at 127.0.0.1:2379, so it is not run as a test.)
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	// The server: registered on Serve, deregistered first thing in Close.
	srv, _ := tp.NewPeer(tp.PeerConfig{ListenAddr: "127.0.0.1:9090"}, etcd.Register(cli, "math", etcd.Options{TTL: 5 * time.Second}))
	defer srv.Close()
	go srv.ListenAndServe()

	// The client.
	peer, _ := tp.NewPeer(tp.PeerConfig{})
	defer peer.Close()
	c, err := discovery.NewClient(peer, etcd.NewResolver(cli, ""), discovery.Config{Service: "math"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var sum int
	err = c.Call(context.Background(), "/math/add", []int{1, 2}, &sum)
	log.Println(sum, err)
}
