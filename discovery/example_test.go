package discovery_test

import (
	"context"
	"fmt"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
)

func Add(_ tp.CallCtx, n *[]int) (int, error) { return (*n)[0] + (*n)[1], nil }

// Two servers of "math" and a client that spreads calls over them.
func Example() {
	var addrs []string
	for range 2 {
		srv, _ := tp.NewPeer(tp.PeerConfig{})
		defer srv.Close()
		tp.HandleCall(srv.Router(), "/math/add", Add)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		go srv.Serve(ln)
		addrs = append(addrs, ln.Addr().String())
	}

	r := new(discovery.Static)
	r.Set("math", discovery.Addrs(addrs...)...)
	peer, _ := tp.NewPeer(tp.PeerConfig{})
	defer peer.Close()
	c, err := discovery.NewClient(peer, r, discovery.Config{Service: "math", Selector: discovery.LeastPending()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var sum int
	if err := c.Call(context.Background(), "/math/add", []int{1, 2}, &sum); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum, len(c.Endpoints()))
	// Output: 3 2
}
