package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"strings"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/proto/jsonproto"
	"github.com/seed-a9a850dd/tp/proto/pbproto"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/transport/kcp"
	"github.com/seed-a9a850dd/tp/transport/quic"
	"github.com/seed-a9a850dd/tp/transport/websocket"
	"github.com/seed-a9a850dd/tp/xfer"
	_ "github.com/seed-a9a850dd/tp/xfer/gzip"
	_ "github.com/seed-a9a850dd/tp/xfer/md5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// The handler every system serves: mark the message and send it back.
func handle(m *benchpb.BenchmarkMessage) *benchpb.BenchmarkMessage {
	m.Field1 = proto.String("OK")
	m.Field2 = proto.Int32(100)
	return m
}

// A system is one RPC implementation under test.
type system interface {
	// serve listens on ln until it is closed.
	serve(ln net.Listener) error
	// dial opens n sessions (connections) to addr.
	dial(addr string, n int) (client, error)
}

// A client makes calls over one of its sessions.
type client interface {
	call(session int, req, resp *benchpb.BenchmarkMessage) error
	close()
}

var systemNames = []string{"tp", "net/rpc", "grpc", "echo", "echo+pb"}

func newSystem(name string, o options) (system, error) {
	switch name {
	case "tp":
		return newTP(o)
	case "net/rpc":
		return netRPC{}, nil
	case "grpc":
		return gRPC{}, nil
	case "echo":
		return echoSystem{}, nil
	case "echo+pb":
		return echoSystem{pb: true}, nil
	case "tp/http":
		t, err := newTP(o)
		if err != nil {
			return nil, err
		}
		return frontSystem{t}, nil
	case "net/http":
		return netHTTP{}, nil
	}
	return nil, fmt.Errorf("unknown system %q: want one of %s", name, strings.Join(systemNames, ", "))
}

// ---- tp ----

type tpSystem struct {
	transport string
	cfg       tp.PeerConfig
	settings  []tp.MessageSetting
	plugins   func() ([]tp.Plugin, error) // a new set per peer
}

func newTP(o options) (*tpSystem, error) {
	s := &tpSystem{transport: o.transport, cfg: tp.PeerConfig{Logger: quietLogger, PoolSize: 100_000}}
	switch o.transport {
	case "tcp", "":
	case "unix":
		s.cfg.Network = "unix"
	case "websocket":
		s.cfg.Dialer = websocket.Dialer(websocket.DialOptions{})
	case "kcp":
		s.cfg.Dialer = kcp.Dialer(kcp.Config{})
	case "quic":
		// The child's certificate is made for the run: a benchmark on
		// loopback trusts it unseen.
		s.cfg.Dialer = quic.Dialer(&tls.Config{InsecureSkipVerify: true}, nil)
	default:
		return nil, fmt.Errorf("unknown -transport %q: want tcp, unix, websocket, quic or kcp", o.transport)
	}
	var err error
	if s.plugins, err = pluginSet(o.plugins); err != nil {
		return nil, err
	}
	switch o.proto {
	case "raw", "":
		s.cfg.Proto = rawproto.New()
	case "json":
		s.cfg.Proto = jsonproto.New()
	case "protobuf":
		s.cfg.Proto = pbproto.New()
	default:
		return nil, fmt.Errorf("unknown -proto %q: want raw, json or protobuf", o.proto)
	}
	c, err := codec.ByName(o.codec)
	if err != nil {
		return nil, err
	}
	s.cfg.BodyCodec = c.ID()
	for _, name := range strings.FieldsFunc(o.xfer, func(r rune) bool { return r == ',' }) {
		f, err := xfer.ByName(name)
		if err != nil {
			return nil, err
		}
		s.settings = append(s.settings, tp.WithXferPipe(f.ID()))
	}
	return s, nil
}

// Echo is tp's handler.
func Echo(ctx tp.CallCtx, arg *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, error) {
	return handle(arg), nil
}

func (s *tpSystem) serve(ln net.Listener) error {
	ps, err := s.plugins()
	if err != nil {
		return err
	}
	p, err := tp.NewPeer(s.cfg, ps...)
	if err != nil {
		return err
	}
	defer p.Close()
	tp.HandleCall(p.Router(), "/echo", Echo)
	tp.HandleStream(p.Router(), "/echo_stream", EchoStream)
	if s.transport == "websocket" {
		ln = websocket.Listen(ln, websocket.Options{})
	}
	return p.Serve(ln)
}

type tpClient struct {
	sys      *tpSystem
	peer     *tp.Peer
	sessions []*tp.Session
}

func (s *tpSystem) dial(addr string, n int) (client, error) {
	ps, err := s.plugins()
	if err != nil {
		return nil, err
	}
	peer, err := tp.NewPeer(s.cfg, ps...)
	if err != nil {
		return nil, err
	}
	c := &tpClient{sys: s, peer: peer}
	if s.transport == "websocket" {
		addr = "ws://" + addr + "/tp"
	}
	for range n {
		sess, err := c.peer.Dial(context.Background(), addr)
		if err != nil {
			c.close()
			return nil, err
		}
		c.sessions = append(c.sessions, sess)
	}
	return c, nil
}

func (c *tpClient) call(i int, req, resp *benchpb.BenchmarkMessage) error {
	return c.sessions[i].Call(context.Background(), "/echo", req, resp, c.sys.settings...).Err()
}

func (c *tpClient) close() { c.peer.Close() }

// ---- net/rpc, with gob and the same Go struct ----

type netRPC struct{}

// Bench is net/rpc's service.
type Bench struct{}

// Echo is net/rpc's handler.
func (Bench) Echo(req *benchpb.BenchmarkMessage, resp *benchpb.BenchmarkMessage) error {
	shallowCopy(resp, handle(req))
	return nil
}

func (netRPC) serve(ln net.Listener) error {
	srv := rpc.NewServer()
	if err := srv.Register(Bench{}); err != nil {
		return err
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go srv.ServeConn(conn)
	}
}

type netRPCClient []*rpc.Client

func (netRPC) dial(addr string, n int) (client, error) {
	var c netRPCClient
	for range n {
		cl, err := rpc.Dial("tcp", addr)
		if err != nil {
			c.close()
			return nil, err
		}
		c = append(c, cl)
	}
	return c, nil
}

func (c netRPCClient) call(i int, req, resp *benchpb.BenchmarkMessage) error {
	return c[i].Call("Bench.Echo", req, resp)
}

func (c netRPCClient) close() {
	for _, cl := range c {
		cl.Close()
	}
}

// ---- gRPC, with a hand-written service description ----

type gRPC struct{}

type echoServer interface {
	Echo(context.Context, *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, error)
}

type grpcEcho struct{}

func (grpcEcho) Echo(_ context.Context, m *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, error) {
	return handle(m), nil
}

var grpcDesc = grpc.ServiceDesc{
	ServiceName: "bench.Bench",
	HandlerType: (*echoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(benchpb.BenchmarkMessage)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(echoServer).Echo(ctx, in)
		},
	}},
	Streams: []grpc.StreamDesc{{StreamName: "EchoStream", Handler: grpcEchoStream, ServerStreams: true, ClientStreams: true}},
}

func (gRPC) serve(ln net.Listener) error {
	srv := grpc.NewServer()
	srv.RegisterService(&grpcDesc, grpcEcho{})
	err := srv.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

type grpcClient []*grpc.ClientConn

func (gRPC) dial(addr string, n int) (client, error) {
	var c grpcClient
	for range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, err
		}
		c = append(c, cc)
	}
	return c, nil
}

func (c grpcClient) call(i int, req, resp *benchpb.BenchmarkMessage) error {
	return c[i].Invoke(context.Background(), "/bench.Bench/Echo", req, resp)
}

func (c grpcClient) close() {
	for _, cc := range c {
		cc.Close()
	}
}
