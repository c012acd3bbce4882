package rawproto_test

import (
	"testing"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	xgzip "github.com/seed-a9a850dd/tp/xfer/gzip"
)

// BenchmarkPackUnpack packs a CALL carrying the 581-byte benchmark message
// and unpacks it again, body codec included, as one call's request does on
// its two ends.
func BenchmarkPackUnpack(b *testing.B) {
	pbBody := benchpb.New()
	raw := make([]byte, 581)
	tests := []struct {
		name  string
		codec byte
		body  any
		into  func() any
		pipe  []byte
	}{
		{"protobuf", codec.ProtobufID, pbBody, func() any { return new(benchpb.BenchmarkMessage) }, nil},
		{"protobuf+gzip", codec.ProtobufID, pbBody, func() any { return new(benchpb.BenchmarkMessage) }, []byte{xgzip.ID}},
		{"plain-bytes", codec.PlainID, raw, func() any { return new([]byte) }, nil},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			p := rawproto.New()()
			out := socket.AcquireMessage()
			into := tt.into()
			var buf []byte
			in := &socket.Message{Type: socket.TypeCall, ServiceMethod: "/bench/echo", BodyCodec: tt.codec, Body: tt.body, XferPipe: tt.pipe}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				in.Seq = uint32(i)
				var err error
				if buf, err = socket.Pack(p, buf[:0], in); err != nil {
					b.Fatal(err)
				}
				out.Reset()
				if err := socket.Unpack(p, buf, out, socket.DefaultReadLimit); err != nil {
					b.Fatal(err)
				}
				if err := out.UnmarshalBody(into); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "frame-bytes")
		})
	}
}
