package binder_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/binder"
)

type Transfer struct {
	To     string `validate:"required"`
	Amount int    `validate:"gt=0,lte=1000"`
	Trace  string `bind:"meta:trace-id"`
}

func Send(ctx tp.CallCtx, t *Transfer) (string, *tp.Status) {
	return fmt.Sprintf("sent %d to %s (trace %s)", t.Amount, t.To, t.Trace), nil
}

func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{}, binder.New())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Send)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())
	for _, amount := range []int{50, 5000} {
		var out string
		st := sess.Call(context.Background(), "/send", Transfer{To: "bob", Amount: amount}, &out, tp.WithSetMeta("trace-id", "t-1")).Status()
		if st != nil {
			fmt.Println(st)
			continue
		}
		fmt.Println(out)
	}
	// Output:
	// sent 50 to bob (trace t-1)
	// field Amount breaks rule "lte=1000" (invalid argument)
}
