package tp_test

import (
	"context"
	"google.golang.org/protobuf/proto"
	"net"
	"sync/atomic"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/internal/testnet"
)

// countConn counts read and write syscalls.
type countConn struct {
	net.Conn
	reads, writes *atomic.Int64
}

func (c countConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

func (c countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// benchPair connects a server and a client over TCP loopback through
// counting conns and returns the client's session.
func benchPair(b *testing.B, route func(*tp.Peer)) (*tp.Session, *atomic.Int64, *atomic.Int64) {
	srv := newPeer(b, tp.PeerConfig{})
	route(srv)
	cli := newPeer(b, tp.PeerConfig{})
	a, s := testnet.Pair(b)
	var reads, writes atomic.Int64
	if _, st := srv.ServeConn(countConn{s, &reads, &writes}); st != nil {
		b.Fatal(st)
	}
	sess, st := cli.ServeConn(countConn{a, &reads, &writes})
	if st != nil {
		b.Fatal(st)
	}
	return sess, &reads, &writes
}

// BenchmarkCall is one call round trip over loopback, both peers in this
// process. "bytes" carries a 581-byte []byte in the plain codec, so what it
// allocates is tp's own; "protobuf" is the benchmark message. syscalls/call
// counts reads and writes on both ends.
func BenchmarkCall(b *testing.B) {
	raw := make([]byte, 581)
	cases := []struct {
		name  string
		route func(*tp.Peer)
		call  func(s *tp.Session) error
	}{
		{"bytes", func(p *tp.Peer) {
			tp.HandleCall(p.Router(), "/bytes_echo", func(_ tp.CallCtx, a *[]byte) (*[]byte, error) { return a, nil }, tp.Codecs(codec.PlainID))
		}, func(s *tp.Session) error {
			out := make([]byte, 0, 1024)
			return s.Call(context.Background(), "/bytes_echo", raw, &out, tp.WithBodyCodec(codec.PlainID)).Err()
		}},
		{"protobuf", func(p *tp.Peer) {
			tp.HandleCall(p.Router(), "/echo", func(ctx tp.CallCtx, a *benchpb.BenchmarkMessage) (*benchpb.BenchmarkMessage, error) {
				a.Field1, a.Field2 = proto.String("OK"), proto.Int32(100)
				return a, nil
			}, tp.Codecs(codec.ProtobufID))
		}, func(s *tp.Session) error {
			var out benchpb.BenchmarkMessage
			return s.Call(context.Background(), "/echo", benchpb.New(), &out, tp.WithBodyCodec(codec.ProtobufID)).Err()
		}},
	}
	for _, tc := range cases {
		for _, par := range []int{1, 50} {
			name := tc.name + "/serial"
			if par > 1 {
				name = tc.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				sess, reads, writes := benchPair(b, tc.route)
				b.ReportAllocs()
				b.ResetTimer()
				if par == 1 {
					for i := 0; i < b.N; i++ {
						if err := tc.call(sess); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(par)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := tc.call(sess); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(reads.Load()+writes.Load())/float64(b.N), "syscalls/call")
			})
		}
	}
}
