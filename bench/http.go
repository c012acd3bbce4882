package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/httpfront"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
)

// ---- -http: tp's HTTP front against tp's own client and net/http ----
//
// Every system carries the scenario's message as JSON: tp with its JSON
// codec over its own client; "tp/http", the same tp server through
// httpfront, called with net/http's client over keep-alive connections
// (HTTP/1.1, one per caller at most); "net/http", a plain net/http JSON
// handler (encoding/json) with the same client. The front's own cost is
// tp/http against net/http.

var httpSystemNames = []string{"tp", "tp/http", "net/http"}

// frontSystem serves the tp server through httpfront on its own HTTP
// server.
type frontSystem struct{ tp *tpSystem }

func (s frontSystem) serve(ln net.Listener) error {
	p, err := tp.NewPeer(s.tp.cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	tp.HandleCall(p.Router(), "/echo", Echo)
	f, err := httpfront.New(p, httpfront.Options{})
	if err != nil {
		return err
	}
	defer f.Close()
	return p.Serve(f.Listen(ln))
}

func (s frontSystem) dial(addr string, n int) (client, error) {
	return newHTTPClient("http://"+addr+"/echo", n), nil
}

// netHTTP is net/http with a plain JSON handler.
type netHTTP struct{}

func (netHTTP) serve(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var m benchpb.BenchmarkMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, err := json.Marshal(handle(&m))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	err := (&http.Server{Handler: mux}).Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

func (netHTTP) dial(addr string, n int) (client, error) {
	return newHTTPClient("http://"+addr+"/echo", n), nil
}

type httpClient struct {
	url string
	c   *http.Client
}

func newHTTPClient(url string, conns int) *httpClient {
	return &httpClient{url: url, c: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}}}
}

func (h *httpClient) call(_ int, req, resp *benchpb.BenchmarkMessage) error {
	b, err := codec.JSON{}.Marshal(nil, req)
	if err != nil {
		return err
	}
	r, err := h.c.Post(h.url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s: %s", r.Status, body)
	}
	return codec.JSON{}.Unmarshal(body, resp)
}

func (h *httpClient) close() { h.c.CloseIdleConnections() }
