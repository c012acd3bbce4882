// Package rawproto is tp's default proto: a compact binary framing.
//
// A frame is socket's envelope (see socket.Pack) with version byte 1,
// around this encoding of the header and the body:
//
//	type      uint8              CALL 1, REPLY 2, PUSH 3
//	seq       uint32, big endian
//	codec     uint8              body codec id; 0 for none
//	timeout   uvarint            microseconds left until the deadline; 0 for none
//	method    uvarint n, n bytes service method
//	code      varint (zigzag)    status code; 0 means no status, and then
//	                             the next two fields are absent
//	msg       uvarint n, n bytes status message
//	cause     uvarint n, n bytes status cause
//	nmeta     uvarint            number of meta pairs, then for each pair:
//	key       uvarint n, n bytes
//	value     uvarint n, n bytes
//	body      the rest of the frame
//
// A CALL to "/math/add" with an 8-byte body and no meta takes 30 bytes.
package rawproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// Version is the frame's version byte.
const Version = 1

// maxMethods bounds the per-connection cache of service-method strings, so
// a peer inventing names cannot grow it without end.
const maxMethods = 256

// maxMethodLen is the longest service method the cache keeps: a huge name
// must not stay pinned for the connection's life.
const maxMethodLen = 256

// New returns the ProtoFunc of rawproto.
func New() socket.ProtoFunc {
	return func() socket.Proto { return &proto{methods: make(map[string]string)} }
}

type proto struct {
	// methods interns service methods read on this connection: a lookup by
	// the frame's bytes does not allocate, so a known route costs nothing.
	// Only Decode touches it, and Decode runs on one goroutine at a time.
	methods map[string]string
}

func (*proto) Version() (byte, string) { return Version, "raw" }

// Encode appends the header fields and m.Payload.
func (p *proto) Encode(b []byte, m *socket.Message) ([]byte, error) {
	b, err := p.EncodeHeader(b, m)
	return append(b, m.Payload...), err
}

// EncodeHeader appends the header fields: the body follows as it is, so
// the socket encodes it in place (see socket.HeaderEncoder).
func (*proto) EncodeHeader(b []byte, m *socket.Message) ([]byte, error) {
	b = append(b, byte(m.Type))
	b = binary.BigEndian.AppendUint32(b, m.Seq)
	b = append(b, m.BodyCodec)
	b = binary.AppendUvarint(b, timeoutMicros(m.Deadline))
	b = appendString(b, m.ServiceMethod)
	if m.Status.OK() {
		b = append(b, 0)
	} else {
		b = binary.AppendVarint(b, int64(m.Status.Code()))
		b = appendString(b, m.Status.Msg())
		b = appendString(b, m.Status.CauseText())
	}
	b = binary.AppendUvarint(b, uint64(m.Meta.Len()))
	m.Meta.Range(func(k, v string) bool {
		b = appendString(b, k)
		b = appendString(b, v)
		return true
	})
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// timeoutMicros returns the time left until d in microseconds: 0 for no
// deadline, at least 1 for one that has passed.
func timeoutMicros(d time.Time) uint64 {
	if d.IsZero() {
		return 0
	}
	return uint64(max(time.Until(d).Microseconds(), 1))
}

var errShort = errors.New("rawproto: frame ends inside its header")

// Decode reads the header fields; the body is the rest of b.
func (p *proto) Decode(b []byte, m *socket.Message) error {
	if err := p.decode(b, m); err != nil {
		return status.New(status.BadMessage, "rawproto: malformed frame", err)
	}
	return nil
}

// decoder walks the inner bytes of a frame; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uint32() uint32 {
	if len(d.b) < 4 {
		d.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed field, aliasing the frame.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("rawproto: field of %d bytes overruns the frame", n))
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (p *proto) decode(b []byte, m *socket.Message) error {
	d := decoder{b: b}
	m.Type = socket.Type(d.byte())
	m.Seq = d.uint32()
	m.BodyCodec = d.byte()
	if us := d.uvarint(); us > 0 {
		m.Deadline = time.Now().Add(time.Duration(min(us, uint64(1<<63-1)/1000)) * time.Microsecond)
	}
	m.ServiceMethod = p.method(d.bytes())
	if code := d.varint(); code != 0 {
		if int64(int32(code)) != code {
			d.fail(fmt.Errorf("rawproto: status code %d overflows 32 bits", code))
		}
		msg, cause := d.bytes(), d.bytes()
		m.Status = status.Newf(status.Code(code), string(msg), string(cause))
	}
	n := d.uvarint()
	if n > uint64(len(d.b)/2) { // each pair takes at least two bytes
		d.fail(fmt.Errorf("rawproto: %d meta pairs cannot fit in %d bytes", n, len(d.b)))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k, v := d.bytes(), d.bytes()
		m.Meta.Add(string(k), string(v))
	}
	if d.err != nil {
		return d.err
	}
	m.Payload = d.b
	return nil
}

func (p *proto) method(b []byte) string {
	if s, ok := p.methods[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.methods) < maxMethods && len(s) <= maxMethodLen {
		p.methods[s] = s
	}
	return s
}
