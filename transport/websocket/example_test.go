package websocket_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/transport/websocket"
)

func Greet(_ tp.CallCtx, name *string) (string, error) { return "hello, " + *name, nil }

// One HTTP server serves a web app and tp sessions over WebSocket; a tp
// client dials the ws:// URL.
func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tp.HandleCall(srv.Router(), "/greet", Greet)

	mux := http.NewServeMux()
	mux.Handle("/tp", websocket.Handler(srv, websocket.Options{}))
	mux.Handle("/", http.FileServer(http.Dir("."))) // the web app, beside it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()

	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{})})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), "ws://"+ln.Addr().String()+"/tp")
	if err != nil {
		log.Fatal(err)
	}
	greeting, err := tp.Call[string](context.Background(), sess, "/greet", "browser")
	fmt.Println(greeting, err)
	// Output:
	// hello, browser <nil>
}
