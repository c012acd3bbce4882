package httpfront_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/httpfront"
)

// A tp handler called with plain HTTP, through a Front mounted on a mux.
func Example() {
	peer, _ := tp.NewPeer(tp.PeerConfig{})
	defer peer.Close()
	tp.HandleCall(peer.Router(), "/math/add", func(_ tp.CallCtx, n *[]int) (int, error) { return (*n)[0] + (*n)[1], nil })

	front, _ := httpfront.New(peer, httpfront.Options{Prefix: "/api"})
	defer front.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/", front)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/api/math/add", "application/json", strings.NewReader("[1, 2]"))
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body))

	resp, _ = http.Post(srv.URL+"/api/math/mul", "application/json", strings.NewReader("[1, 2]"))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))
	// Output:
	// 200 OK 3
	// 404 Not Found {"code":6,"message":"no CALL handler for \"/math/mul\""}
}
