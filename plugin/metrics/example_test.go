package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/plugin/metrics"
)

func Double(ctx tp.CallCtx, n *int) (int, *tp.Status) { return 2 * *n, nil }

// The application owns the registry and serves /metrics itself. Here the
// client's calls are counted; on a server the same plugin counts those
// it serves.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg})
	if err != nil {
		panic(err)
	}
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Double)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	web := httptest.NewServer(mux)
	defer web.Close()

	cli, err := tp.NewPeer(tp.PeerConfig{}, m) // counts the calls it makes
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())
	for i := range 5 {
		sess.Call(context.Background(), "/double", i, nil)
	}

	resp, err := http.Get(web.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "tp_calls_made_total") {
			fmt.Println(lines.Text())
		}
	}
	// Output: tp_calls_made_total{code="ok",service_method="/double"} 5
}
