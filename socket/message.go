package socket

import (
	"strconv"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/status"
	"github.com/seed-a9a850dd/tp/xfer"
)

// Type is the kind of a message.
type Type uint8

// The message types. A CALL expects a REPLY with the same Seq; a PUSH
// expects nothing. The stream types carry the stream's id in Seq (odd for
// streams the dialing end opened, even for the accepting end's), and a
// CANCEL the Seq of a CALL its sender gave up on. A peer sends the types
// after PUSH only to peers whose hello says they know them.
const (
	TypeCall   Type = 1
	TypeReply  Type = 2
	TypePush   Type = 3
	TypeOpen   Type = 4 // opens a stream: service method, meta, deadline, body codec
	TypeData   Type = 5 // one message on a stream
	TypeWindow Type = 6 // grants the peer more credit on a stream: a uvarint in Payload
	TypeClose  Type = 7 // the sender sends no more on a stream; meta: its trailer
	TypeEnd    Type = 8 // the stream is over both ways; Status: why (nil: done); meta: the trailer
	TypeCancel Type = 9 // the sender stopped waiting for its CALL Seq; Status: why
)

// Valid reports whether t is one of the message types.
func (t Type) Valid() bool { return t >= TypeCall && t <= TypeCancel }

var typeNames = [...]string{TypeCall: "CALL", TypeReply: "REPLY", TypePush: "PUSH", TypeOpen: "OPEN",
	TypeData: "DATA", TypeWindow: "WINDOW", TypeClose: "CLOSE", TypeEnd: "END", TypeCancel: "CANCEL"}

// String returns the type's name, such as "CALL", or "TYPE(n)".
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "TYPE(" + strconv.Itoa(int(t)) + ")"
}

// Meta is an ordered list of key/value pairs that travels with a message,
// like HTTP headers. A key may repeat. The zero value is empty and ready.
type Meta struct {
	kv []string // key, value, key, value...
}

// Len returns the number of pairs.
func (m *Meta) Len() int { return len(m.kv) / 2 }

// Get returns the first value of key, or "".
func (m *Meta) Get(key string) string {
	for i := 0; i < len(m.kv); i += 2 {
		if m.kv[i] == key {
			return m.kv[i+1]
		}
	}
	return ""
}

// Values returns every value of key, in order.
func (m *Meta) Values(key string) []string {
	var vs []string
	for i := 0; i < len(m.kv); i += 2 {
		if m.kv[i] == key {
			vs = append(vs, m.kv[i+1])
		}
	}
	return vs
}

// Add appends a pair, keeping any earlier values of key.
func (m *Meta) Add(key, value string) { m.kv = append(m.kv, key, value) }

// AddAll adds every pair of src, in order.
func (m *Meta) AddAll(src *Meta) { m.kv = append(m.kv, src.kv...) }

// Set replaces every value of key with value.
func (m *Meta) Set(key, value string) {
	m.Del(key)
	m.Add(key, value)
}

// Del removes every pair with key.
func (m *Meta) Del(key string) {
	out := m.kv[:0]
	for i := 0; i < len(m.kv); i += 2 {
		if m.kv[i] != key {
			out = append(out, m.kv[i], m.kv[i+1])
		}
	}
	clear(m.kv[len(out):])
	m.kv = out
}

// Range calls fn for each pair in order until fn returns false.
func (m *Meta) Range(fn func(key, value string) bool) {
	for i := 0; i < len(m.kv); i += 2 {
		if !fn(m.kv[i], m.kv[i+1]) {
			return
		}
	}
}

// Reset removes every pair, keeping the storage unless a message with
// very many pairs grew it: a pooled message must not pin that.
func (m *Meta) Reset() {
	if cap(m.kv) > maxKeptMeta {
		m.kv = nil
		return
	}
	clear(m.kv)
	m.kv = m.kv[:0]
}

// maxKeptMeta is the most meta storage (keys and values) Reset keeps.
const maxKeptMeta = 64

// Message is one CALL, REPLY or PUSH as it crosses the wire.
//
// On the write side, set the fields and Body (a value the body codec
// encodes) or Payload (bytes already encoded). On the read side, the proto
// fills every field but Body; decode the payload with UnmarshalBody.
// A Message is not safe for concurrent use.
type Message struct {
	Seq           uint32         // pairs a REPLY with its CALL
	Type          Type           // CALL, REPLY or PUSH
	ServiceMethod string         // the route, such as "/math/add"
	Status        *status.Status // a REPLY's outcome; nil means OK
	Meta          Meta           // key/value pairs beside the body
	BodyCodec     byte           // codec id of the body; 0 when there is none
	XferPipe      xfer.Pipe      // filters run over the packed message
	// Deadline is when the sender stops waiting. It travels as the time
	// left, so the clocks of the two ends need not agree.
	Deadline time.Time
	Body     any    // write side: the value to encode; nil sends Payload
	Payload  []byte // the encoded body
	Size     int    // bytes the frame took on the wire, set by the socket

	buf *[]byte // pooled storage Payload points into after a read
}

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// AcquireMessage returns an empty Message from a pool. Return it with
// ReleaseMessage once nothing refers to it or its Payload.
func AcquireMessage() *Message { return messagePool.Get().(*Message) }

// ReleaseMessage resets m and returns it to the pool.
func ReleaseMessage(m *Message) {
	m.Reset()
	messagePool.Put(m)
}

// Reset clears every field, keeping storage for reuse. Payload is no longer
// valid afterwards if the message was read from a socket.
func (m *Message) Reset() {
	meta, pipe := m.Meta, m.XferPipe
	meta.Reset()
	pipe.Reset()
	bufpool.Put(m.buf)
	*m = Message{Meta: meta, XferPipe: pipe}
}

// RawBody is a body kept encoded, in any codec: what a proxy forwards. As
// a Message's Body it is written as its Bytes (set the message's BodyCodec
// to its Codec), and UnmarshalBody into a *RawBody copies the payload and
// the codec id rather than decoding.
type RawBody struct {
	Codec byte
	Bytes []byte
}

// MarshalBody appends the encoded body to dst: Body through the body codec,
// or Payload as it is when Body is nil.
func (m *Message) MarshalBody(dst []byte) ([]byte, error) {
	switch b := m.Body.(type) {
	case nil:
		return append(dst, m.Payload...), nil
	case *RawBody:
		return append(dst, b.Bytes...), nil
	}
	c, err := codec.ByID(m.BodyCodec)
	if err != nil {
		return dst, status.New(status.Unsupported, "cannot encode the body", err)
	}
	dst, err = c.Marshal(dst, m.Body)
	if err != nil {
		return dst, status.New(status.InvalidArgument, "cannot encode the body", err)
	}
	return dst, nil
}

// UnmarshalBody decodes Payload into v with the body codec. An empty
// payload leaves v untouched. Errors are *status.Status values: Unsupported
// for an unknown codec, BadMessage for a body that does not decode into v.
func (m *Message) UnmarshalBody(v any) error {
	if r, ok := v.(*RawBody); ok {
		r.Codec, r.Bytes = m.BodyCodec, append(r.Bytes[:0], m.Payload...)
		return nil
	}
	if len(m.Payload) == 0 {
		return nil
	}
	c, err := codec.ByID(m.BodyCodec)
	if err != nil {
		return status.New(status.Unsupported, "cannot decode the body", err)
	}
	if err := c.Unmarshal(m.Payload, v); err != nil {
		return status.New(status.BadMessage, "cannot decode the body", err)
	}
	return nil
}

// hold makes b the storage m owns, releasing what it held before.
func (m *Message) hold(b *[]byte) {
	if m.buf != b {
		bufpool.Put(m.buf)
		m.buf = b
	}
}
