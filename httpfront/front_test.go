package httpfront_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/httpfront"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/internal/conformance"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

type Sum struct {
	Sum int `json:"sum" form:"sum"`
}

type Pair struct {
	A int `json:"a" form:"a"`
	B int `json:"b" form:"b"`
}

// service is the peer's routes.
type service struct {
	notes    atomic.Int64
	deadline atomic.Bool // /slow saw a deadline
	headers  atomic.Int64
}

func (s *service) routes(p *tp.Peer) {
	all := tp.Codecs(codec.JSONID, codec.ProtobufID, codec.FormID, codec.PlainID)
	tp.HandleCall(p.Router(), "/math/add", func(_ tp.CallCtx, n *[]int) (int, error) { return (*n)[0] + (*n)[1], nil }, all)
	tp.HandleCall(p.Router(), "/math/sum", func(_ tp.CallCtx, a *Pair) (Sum, error) { return Sum{a.A + a.B}, nil }, all)
	tp.HandleCall(p.Router(), "/echo", func(_ tp.CallCtx, m *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, error) {
		m.Field1 = proto.String("OK")
		return m, nil
	}, all)
	tp.HandleCall(p.Router(), "/meta", func(ctx tp.CallCtx, _ *struct{}) (string, error) {
		ctx.SetMeta("Served-By", "peer-1")
		return ctx.PeekMeta("User-Id") + "|" + ctx.PeekMeta("traceparent"), nil
	}, all)
	tp.HandleCall(p.Router(), "/ip", func(ctx tp.CallCtx, _ *struct{}) (string, error) { return ctx.RealIP(), nil }, all)
	tp.HandleCall(p.Router(), "/slow", func(ctx tp.CallCtx, _ *struct{}) (string, error) {
		_, ok := ctx.Context().Deadline()
		s.deadline.Store(ok)
		select {
		case <-ctx.Context().Done():
			return "", ctx.Context().Err()
		case <-time.After(5 * time.Second):
			return "late", nil
		}
	}, all)
	tp.HandleCall(p.Router(), "/fail", func(_ tp.CallCtx, code *int) (int, error) {
		return 0, tp.NewStatus(tp.Code(*code), "failing as asked", nil)
	}, all)
	tp.HandlePush(p.Router(), "/note", func(_ tp.PushCtx, _ *string) error {
		s.notes.Add(1)
		return nil
	}, all)
}

// headerCount is a plugin counting the CALL headers the peer reads.
type headerCount struct{ n *atomic.Int64 }

func (headerCount) Name() string { return "count" }
func (h headerCount) PostReadCallHeader(tp.ReadCtx) error {
	h.n.Add(1)
	return nil
}

// setup serves a peer's tp and HTTP on one port (Listen), and returns
// the port's address.
func setup(t *testing.T, opts httpfront.Options) (*service, *tp.Peer, string) {
	t.Helper()
	s := &service{}
	peer := tptest.NewPeer(t, tp.PeerConfig{}, headerCount{&s.headers})
	s.routes(peer)
	f, err := httpfront.New(peer, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- peer.Serve(f.Listen(ln)) }()
	t.Cleanup(func() {
		peer.Close()
		<-served
		f.Close()
	})
	return s, peer, ln.Addr().String()
}

func post(t *testing.T, c *http.Client, url, ctype string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func client(t *testing.T) *http.Client {
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestCalls(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{})
	c := client(t)
	base := "http://" + addr
	pb, _ := proto.Marshal(benchpb.New())
	for _, tt := range []struct {
		name, path, ctype string
		body              []byte
		hdr               map[string]string
		status            int
		wantType, want    string
	}{
		{"json", "/math/add", "application/json", []byte("[1,2]"), nil, 200, "application/json", "3"},
		{"no content type is json", "/math/add", "", []byte("[2,3]"), nil, 200, "application/json", "5"},
		{"form", "/math/sum", "application/x-www-form-urlencoded", []byte("a=1&b=4"), nil, 200, "application/x-www-form-urlencoded", "sum=5"},
		{"json, form back by Accept", "/math/sum", "application/json", []byte(`{"a":2,"b":2}`), map[string]string{"Accept": "text/html, application/x-www-form-urlencoded"}, 200, "application/x-www-form-urlencoded", "sum=4"},
		{"protobuf", "/echo", "application/x-protobuf", pb, nil, 200, "application/x-protobuf", ""},
		{"unknown route", "/nothing", "application/json", []byte("{}"), nil, 404, "application/json", `"code":6`},
		{"malformed JSON", "/math/add", "application/json", []byte("[1,"), nil, 400, "application/json", `"code":5`},
		{"unsupported type", "/math/add", "text/xml", []byte("<a/>"), nil, 415, "application/json", `"code":13`},
		{"bad timeout header", "/math/add", "application/json", []byte("[1,2]"), map[string]string{"Tp-Timeout": "soon"}, 400, "application/json", "Tp-Timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, c, base+tt.path, tt.ctype, tt.body, tt.hdr)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%d %s %q; want %d %s containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.wantType, tt.want)
			}
			if tt.name == "protobuf" {
				var m benchpb.BenchmarkMessage
				if err := proto.Unmarshal(body, &m); err != nil || m.GetField1() != "OK" {
					t.Fatalf("the protobuf reply: %v, %v", m.GetField1(), err)
				}
			}
		})
	}

	// GET with a query: a form body.
	resp, err := c.Get(base + "/math/sum?a=5&b=6")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "sum=11" {
		t.Fatalf("GET: %d %q", resp.StatusCode, b)
	}
}

func TestStatusMapping(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{})
	c := client(t)
	for _, tt := range []struct {
		code   tp.Code
		status int
	}{
		{tp.CodeNotFound, 404}, {tp.CodeBadMessage, 400}, {tp.CodeInvalidArgument, 400}, {tp.CodeUnauthorized, 401},
		{tp.CodeTooLarge, 413}, {tp.CodeUnsupported, 415}, {tp.CodeTimeout, 504}, {tp.CodeOverloaded, 503},
		{tp.CodeShuttingDown, 503}, {tp.CodeInternal, 500}, {tp.CodeUnknown, 500}, {tp.CodeConnClosed, 502},
		{418, 418}, {1000, 500},
	} {
		resp, body := post(t, c, "http://"+addr+"/fail", "application/json", []byte(fmt.Sprint(int(tt.code))), nil)
		var eb httpfront.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || resp.StatusCode != tt.status || eb.Code != tt.code || eb.Message == "" {
			t.Errorf("code %v: %d %q; want %d with {code: %d, message}", tt.code, resp.StatusCode, body, tt.status, tt.code)
		}
		if retry := resp.Header.Get("Retry-After"); (tt.status == 503) != (retry != "") {
			t.Errorf("code %v: Retry-After %q", tt.code, retry)
		}
	}
}

func TestMetaDeadlineIPAndPlugins(t *testing.T) {
	svc, _, addr := setup(t, httpfront.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	c := client(t)
	base := "http://" + addr
	before := svc.headers.Load()
	resp, body := post(t, c, base+"/meta", "application/json", []byte("{}"), map[string]string{
		"Tp-Meta-User-Id": "u-7", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if string(body) != `"u-7|00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"` || resp.Header.Get("Tp-Meta-Served-By") != "peer-1" {
		t.Fatalf("meta both ways: %q, reply headers %v", body, resp.Header)
	}
	if svc.headers.Load() == before {
		t.Fatal("the peer's plugin did not see the HTTP call")
	}

	// The caller's IP; an X-Real-IP from an untrusted address is ignored.
	_, body = post(t, c, base+"/ip", "application/json", []byte("{}"), map[string]string{"X-Real-IP": "10.9.9.9", "Tp-Meta-X-Real-Ip": "10.8.8.8"})
	if string(body) != `"127.0.0.1"` {
		t.Fatalf("RealIP: %s", body)
	}

	// Tp-Timeout bounds the handler's context.
	start := time.Now()
	resp, body = post(t, c, base+"/slow", "application/json", []byte("{}"), map[string]string{"Tp-Timeout": "150ms"})
	if took := time.Since(start); resp.StatusCode != 504 || took > 2*time.Second || !svc.deadline.Load() {
		t.Fatalf("with Tp-Timeout 150ms: %d %q after %v; the handler saw a deadline: %v", resp.StatusCode, body, took, svc.deadline.Load())
	}
	// So does the request's own context.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/slow", strings.NewReader("{}"))
	start = time.Now()
	if _, err := c.Do(req); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("a request whose context ended: %v after %v", err, time.Since(start))
	}

	// A push is accepted, and runs.
	resp, _ = post(t, c, base+"/note", "application/json", []byte(`"hi"`), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}
	tptest.WaitFor(t, "the push", func() bool { return svc.notes.Load() == 1 })
}

// A proxy in TrustedProxies names the caller.
func TestTrustedProxy(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	_, body := post(t, client(t), "http://"+addr+"/ip", "application/json", []byte("{}"), map[string]string{"X-Real-IP": "10.9.9.9"})
	if string(body) != `"10.9.9.9"` {
		t.Fatalf("RealIP behind a trusted proxy: %s", body)
	}
}

// A body over MaxBody is refused with 413 before it is read whole.
func TestBodyLimit(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{MaxBody: 1 << 20})
	// Content-Length of 10 MB, and only a few bytes sent: the answer must
	// come without the rest.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /math/add HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[1,", 10<<20)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	// Chunked, with no length: cut at the limit.
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("1"), 64<<10)
		for range 160 { // 10 MB
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/math/add", pr)
	req.Header.Set("Content-Type", "application/json")
	r2, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 413 {
		t.Fatalf("chunked: status %d, want 413", r2.StatusCode)
	}
}

// A client that sends its headers slowly is cut off by the header
// timeout.
func TestSlowloris(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{ReadHeaderTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /math/sum?a=1&b=2 HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(conn) // until the server closes
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the slow client held its connection %v", took)
	}
	// One that sends nothing at all is closed too.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start = time.Now()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(idle)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a silent connection was held %v", took)
	}
}

// HTTP/1.1 keep-alive reuses one connection; h2c speaks HTTP/2 in clear;
// a tp client dials the same port.
func TestProtocolsOnOnePort(t *testing.T) {
	_, _, addr := setup(t, httpfront.Options{})
	c := client(t)
	reused := 0
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/math/add", strings.NewReader("[1,2]"))
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused++
			}
		}}))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if reused != 9 {
		t.Fatalf("keep-alive: %d of 10 requests reused the connection", reused)
	}

	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	defer h2.CloseIdleConnections()
	resp, body := post(t, h2, "http://"+addr+"/math/add", "application/json", []byte("[3,4]"), nil)
	if resp.Proto != "HTTP/2.0" || string(body) != "7" {
		t.Fatalf("h2c: %s %q", resp.Proto, body)
	}

	cli := tptest.NewPeer(t, tp.PeerConfig{})
	sess := tptest.Dial(t, cli, addr)
	if n, err := tp.Call[int](context.Background(), sess, "/math/add", []int{5, 6}); err != nil || n != 11 {
		t.Fatalf("tp on the HTTP port: %d, %v", n, err)
	}
}

// The real curl binary, HTTP/1.1 and h2c.
func TestCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("no curl on PATH: install it (apt-get install -y curl), as .ci/run does")
	}
	_, _, addr := setup(t, httpfront.Options{})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-s", "-X", "POST", "-H", "Content-Type: application/json", "-d", "[1,2]", "http://" + addr + "/math/add"}, "3"},
		{[]string{"-s", "--http2-prior-knowledge", "-X", "POST", "-d", "[2,2]", "-H", "Content-Type: application/json", "http://" + addr + "/math/add"}, "4"},
		{[]string{"-s", "http://" + addr + "/math/sum?a=2&b=3"}, "sum=5"},
		{[]string{"-s", "-i", "-X", "POST", "-H", "Tp-Meta-User-Id: curl", "-d", "{}", "http://" + addr + "/meta"}, "Tp-Meta-Served-By: peer-1"},
		{[]string{"-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", "http://" + addr + "/nothing"}, "404"},
	} {
		out, err := exec.Command("curl", tt.args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("curl %v: %v\n%s\nwant %q", tt.args, err, out, tt.want)
		}
	}
}

// The Front mounted on a mux path beside other handlers, with a Prefix.
func TestMountedOnAMux(t *testing.T) {
	peer := tptest.NewPeer(t, tp.PeerConfig{})
	(&service{}).routes(peer)
	f, err := httpfront.New(peer, httpfront.Options{Prefix: "/api"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/", f)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "home") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	_, body := post(t, client(t), "http://"+ln.Addr().String()+"/api/math/add", "application/json", []byte("[1,1]"), nil)
	if string(body) != "2" {
		t.Fatalf("through the mux: %q", body)
	}
}

// Over a TLS listener, one port serves HTTPS and tp over TLS, and the tp
// session knows it is TLS.
func TestListenOverTLS(t *testing.T) {
	srvConf, cliConf := conformance.SelfSigned(t)
	var sawTLS atomic.Bool
	peer := tptest.NewPeer(t, tp.PeerConfig{})
	(&service{}).routes(peer)
	tp.HandleCall(peer.Router(), "/tls", func(ctx tp.CallCtx, _ *struct{}) (bool, error) {
		sawTLS.Store(ctx.Session().TLS() != nil)
		return true, nil
	})
	f, err := httpfront.New(peer, httpfront.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- peer.Serve(f.Listen(tls.NewListener(ln, srvConf))) }()
	defer func() { peer.Close(); <-served }()

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cliConf}}
	defer hc.CloseIdleConnections()
	_, body := post(t, hc, "https://"+ln.Addr().String()+"/math/add", "application/json", []byte("[2,5]"), nil)
	if string(body) != "7" {
		t.Fatalf("HTTPS: %q", body)
	}
	cli := tptest.NewPeer(t, tp.PeerConfig{TLS: cliConf})
	sess := tptest.Dial(t, cli, ln.Addr().String())
	if ok, err := tp.Call[bool](context.Background(), sess, "/tls", struct{}{}); err != nil || !ok || !sawTLS.Load() {
		t.Fatalf("tp over TLS: %v, %v; the server saw TLS: %v", ok, err, sawTLS.Load())
	}
}
