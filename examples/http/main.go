// Command http serves a tp peer's handlers to tp clients and to any HTTP
// client on one port, and prints the curl line that calls it.
//
//	go run ./examples/http            # serves until interrupted
//	go run ./examples/http -demo      # calls itself over HTTP and tp, then exits
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/httpfront"
)

// Args are the numbers to add.
type Args struct {
	A int `json:"a" form:"a"`
	B int `json:"b" form:"b"`
}

// Add is an ordinary tp handler; nothing in it knows HTTP.
func Add(ctx tp.CallCtx, args *Args) (int, error) {
	ctx.SetMeta("Served-By", "examples/http")
	return args.A + args.B, nil
}

func main() {
	demo := flag.Bool("demo", false, "call the server over HTTP and tp, then exit")
	addr := flag.String("addr", "127.0.0.1:8080", "the port for tp and HTTP")
	flag.Parse()
	log.SetFlags(0)

	peer, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer peer.Close()
	tp.HandleCall(peer.Router(), "/math/add", Add)
	front, err := httpfront.New(peer, httpfront.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer front.Close()
	if *demo {
		*addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go peer.Serve(front.Listen(ln)) // tp and HTTP on one port

	url := "http://" + ln.Addr().String() + "/math/add"
	fmt.Printf("curl -i -H 'Content-Type: application/json' -d '{\"a\":1,\"b\":2}' %s\n", url)
	if !*demo {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		return
	}

	resp, err := http.Post(url, "application/json", strings.NewReader(`{"a":1,"b":2}`))
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("HTTP: %s %s (Tp-Meta-Served-By: %s)\n", resp.Status, body, resp.Header.Get("Tp-Meta-Served-By"))

	cli, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	sum, err := tp.Call[int](context.Background(), sess, "/math/add", Args{3, 4})
	fmt.Printf("tp: 3+4 = %d %v\n", sum, err)
}
