// Command bench measures tp against the classic Go RPC benchmark: a
// 581-byte protobuf message, a handler that sets two fields and replies,
// C callers making N calls over one or many sessions.
//
//	go run ./bench                      # tp: 100 and 1000 callers, 1 then 100 sessions
//	go run ./bench -compare             # tp, net/rpc and gRPC in alternating rounds
//	go run ./bench -c 100 -n 500000 -sessions 1 -proto json -xfer gzip
//	go run ./bench -server :9090        # a server for a client on another machine
//	go run ./bench -client host:9090    # the client against it
//	go run ./bench -compare -streams 1,100  # streams: tp against gRPC bidi streaming
//
// Servers run in child processes of this one, so the CPU each side uses is
// measured apart. Reports are Markdown tables, or JSON lines with -json.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/seed-a9a850dd/tp/transport/kcp"
	"github.com/seed-a9a850dd/tp/transport/quic"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

type options struct {
	callers    []int
	sessions   []int
	n          int
	codec      string
	proto      string
	xfer       string
	system     string
	server     string
	client     string
	cpuprofile string
	json       bool
	compare    bool
	rounds     int
	child      string // internal: serve this system for a parent bench
	plugins    string // tp plugins on both peers
	streams    []int  // with -streams: the stream benchmark, over these stream counts
	pool       []int  // with -pool: the discovery client over these server counts
	http       bool   // with -http: tp's HTTP front against tp's client and net/http
	transport  string // tp's transport: tcp, unix, websocket, quic or kcp
}

func main() {
	log.SetFlags(0)
	var o options
	var callers, sessions, streams, pool string
	flag.StringVar(&callers, "c", "100,1000", "concurrent callers, a comma-separated list")
	flag.StringVar(&sessions, "sessions", "1,100", "sessions (connections) the callers share, a comma-separated list")
	flag.IntVar(&o.n, "n", 200_000, "calls per measurement")
	flag.StringVar(&o.codec, "codec", "protobuf", "tp body codec: protobuf, json, ...")
	flag.StringVar(&o.proto, "proto", "raw", "tp proto: raw, json or protobuf")
	flag.StringVar(&o.xfer, "xfer", "", "tp xfer filters, comma-separated: gzip, md5")
	flag.StringVar(&o.transport, "transport", "tcp", "tp's transport: tcp, unix, websocket, quic or kcp (the other systems stay on TCP)")
	flag.StringVar(&o.plugins, "plugins", "", "tp plugins on both peers, comma-separated: noop (every hook, doing nothing), metrics, tracing")
	flag.StringVar(&o.system, "system", "tp", "system to measure without -compare: tp, net/rpc or grpc")
	flag.StringVar(&o.server, "server", "", "only serve, on this address, until interrupted")
	flag.StringVar(&o.client, "client", "", "only call, against a server at this address")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the client's CPU profile here, and the server's to FILE.server")
	flag.BoolVar(&o.json, "json", false, "print one JSON object per result instead of tables")
	flag.BoolVar(&o.compare, "compare", false, "measure tp, net/rpc and gRPC in alternating rounds")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per system with -compare")
	flag.StringVar(&o.child, "child", "", "internal: serve this system on loopback for a parent bench")
	flag.StringVar(&streams, "streams", "", "run the stream benchmark instead, over these stream counts on one connection (comma-separated, such as 1,100); with -compare, tp against gRPC bidi streaming")
	flag.StringVar(&pool, "pool", "", "run the discovery client benchmark instead: a bare session to one server against a discovery.Client over these numbers of server processes (comma-separated, such as 1,2,3), in -rounds alternating rounds")
	flag.BoolVar(&o.http, "http", false, "measure tp's HTTP front (tp/http) against tp's own client and a plain net/http JSON handler, all with JSON bodies, in -rounds alternating rounds")
	flag.Parse()
	var err error
	if o.callers, err = ints(callers); err != nil {
		log.Fatalf("-c: %v", err)
	}
	if o.sessions, err = ints(sessions); err != nil {
		log.Fatalf("-sessions: %v", err)
	}
	if pool != "" {
		if o.pool, err = ints(pool); err != nil {
			log.Fatalf("-pool: %v", err)
		}
	}
	if streams != "" {
		if o.streams, err = ints(streams); err != nil {
			log.Fatalf("-streams: %v", err)
		}
	}
	if o.n <= 0 || o.rounds <= 0 {
		log.Fatal("-n and -rounds must be positive")
	}

	switch {
	case o.child != "":
		err = serveChild(o)
	case o.server != "":
		err = serveForever(o)
	case len(o.streams) > 0:
		err = measureStreams(o)
	case len(o.pool) > 0:
		err = measurePool(o)
	default:
		err = measure(o)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// serveChild serves on loopback for a parent bench: it prints the address,
// and stops when its standard input closes, so it never outlives the parent.
func serveChild(o options) error {
	sys, err := newSystem(o.child, o)
	if err != nil {
		return err
	}
	stop := startProfile(o.cpuprofile)
	defer stop()
	ln, err := listenChild(o)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- sys.serve(ln) }()
	fmt.Println("LISTEN", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
	<-done
	return nil
}

func serveForever(o options) error {
	sys, err := newSystem(o.system, o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.server)
	if err != nil {
		return err
	}
	log.Printf("%s serving on %s; interrupt to stop", o.system, ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		<-sig
		ln.Close()
	}()
	return sys.serve(ln)
}

func startProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// readListen reads the child's "LISTEN addr" line.
func readListen(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("server process said nothing: %w", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if !ok {
		return "", fmt.Errorf("server process said %q", line)
	}
	return addr, nil
}

// listenChild is the child's listener: a unix socket for tp over unix,
// else loopback TCP (tp's WebSocket listener wraps it).
func listenChild(o options) (net.Listener, error) {
	if o.child == "tp" && o.transport == "kcp" {
		return kcp.Listen("127.0.0.1:0", kcp.Config{})
	}
	if o.child == "tp" && o.transport == "quic" {
		return quic.Listen("127.0.0.1:0", selfSigned(), nil)
	}
	if o.child == "tp" && o.transport == "unix" {
		dir, err := os.MkdirTemp("", "tp-bench")
		if err != nil {
			return nil, err
		}
		return net.Listen("unix", filepath.Join(dir, "tp.sock"))
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// selfSigned is a TLS config with a certificate made for this run.
func selfSigned() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
