// Package pbproto is a proto whose message header is a protobuf message,
// for peers written in other languages that already speak protobuf.
//
// A frame is socket's envelope (see socket.Pack) with version byte 3, whose
// inner part, before any xfer filter, is the protobuf encoding of the Frame
// message in internal/pb/frame.proto, with the encoded body in its body
// field. Regenerate the Go code with `go generate ./...` (needs protoc and
// protoc-gen-go).
package pbproto

import (
	"time"

	"github.com/seed-a9a850dd/tp/proto/pbproto/internal/pb"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
	"google.golang.org/protobuf/proto"
)

// Version is the frame's version byte.
const Version = 3

// New returns the ProtoFunc of pbproto.
func New() socket.ProtoFunc {
	return func() socket.Proto { return &pbProto{} }
}

type pbProto struct {
	in pb.Frame // reused by Decode, which runs on one goroutine at a time
}

func (*pbProto) Version() (byte, string) { return Version, "protobuf" }

// Encode appends the frame message: header fields and body.
func (*pbProto) Encode(dst []byte, m *socket.Message) ([]byte, error) {
	f := pb.Frame{
		Type:          uint32(m.Type),
		Seq:           m.Seq,
		ServiceMethod: []byte(m.ServiceMethod),
		BodyCodec:     uint32(m.BodyCodec),
	}
	if !m.Deadline.IsZero() {
		f.TimeoutUs = uint64(max(time.Until(m.Deadline).Microseconds(), 1))
	}
	if !m.Status.OK() {
		f.StatusCode = int32(m.Status.Code())
		f.StatusMsg = []byte(m.Status.Msg())
		f.StatusCause = []byte(m.Status.CauseText())
	}
	if n := m.Meta.Len(); n > 0 {
		pairs := make([]pb.Pair, n)
		f.Meta = make([]*pb.Pair, 0, n)
		m.Meta.Range(func(k, v string) bool {
			p := &pairs[len(f.Meta)]
			p.Key, p.Value = []byte(k), []byte(v)
			f.Meta = append(f.Meta, p)
			return true
		})
	}
	f.Body = m.Payload
	return proto.MarshalOptions{}.MarshalAppend(dst, &f)
}

// Decode reads the frame message Encode wrote.
func (p *pbProto) Decode(b []byte, m *socket.Message) error {
	f := &p.in
	if err := proto.Unmarshal(b, f); err != nil {
		return status.New(status.BadMessage, "pbproto: malformed frame", err)
	}
	if f.Type > 0xff || f.BodyCodec > 0xff {
		return status.New(status.BadMessage, "pbproto: type or body codec out of range", nil)
	}
	m.Type = socket.Type(f.Type)
	m.Seq = f.Seq
	m.BodyCodec = byte(f.BodyCodec)
	m.ServiceMethod = string(f.ServiceMethod)
	if f.TimeoutUs > 0 {
		m.Deadline = time.Now().Add(time.Duration(min(f.TimeoutUs, uint64(1<<63-1)/1000)) * time.Microsecond)
	}
	if f.StatusCode != 0 {
		m.Status = status.Newf(status.Code(f.StatusCode), string(f.StatusMsg), string(f.StatusCause))
	}
	for _, kv := range f.Meta {
		m.Meta.Add(string(kv.Key), string(kv.Value))
	}
	// Body is a fresh slice from Unmarshal; hand it over and drop ours so
	// the next Decode does not overwrite it.
	m.Payload = f.Body
	f.Body = nil
	return nil
}
