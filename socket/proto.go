package socket

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/status"
)

// Proto encodes a message's header, beside its body, inside the frame
// envelope the socket writes (see Pack). A proto sees the body only as
// bytes: the socket encodes Body with the body codec once, before Encode,
// and leaves decoding to whoever reads the message. A Proto serves one
// connection: Encode may be called from many goroutines at once, Decode
// from one at a time.
type Proto interface {
	// Version returns the byte that marks the proto's frames and its name.
	Version() (byte, string)
	// Encode appends m's header fields and its body, m.Payload, to dst.
	Encode(dst []byte, m *Message) ([]byte, error)
	// Decode sets m's header fields from b, what Encode wrote, and
	// m.Payload to the body's bytes, which may alias b. After an error the
	// stream cannot be trusted and the connection should be closed.
	Decode(b []byte, m *Message) error
}

// ProtoFunc makes the Proto for one connection, so a proto may keep
// per-connection state, such as a cache of service-method strings.
type ProtoFunc func() Proto

// The envelope around every frame: a length prefix, so the reader takes a
// whole frame at once and can refuse it before allocating, and the filter
// pipe in clear, since it must be read before the rest can be undone:
//
//	size     uint32, big endian: bytes after this field
//	version  uint8: which proto encoded the frame
//	npipe    uint8: number of xfer filters
//	pipe     [npipe]uint8: filter ids, in the order they were applied
//	inner    [size-2-npipe]byte: the proto's encoding, filtered
//
// Pack writes it, and the socket's reader (or Unpack) reads it back.
const envelopeHead = 4 + 1 + 1

// Pack appends to dst the frame carrying m: its body encoded with its body
// codec (or its Payload as it is when Body is nil), the header and body
// encoded by p, filtered through m.XferPipe, in the envelope. m is left as
// it was. It is what Socket.WriteMessage writes; tests and tools use it
// to make frames without a connection.
func Pack(p Proto, dst []byte, m *Message) ([]byte, error) {
	if len(m.XferPipe) > math.MaxUint8 {
		return dst, status.New(status.InvalidArgument, fmt.Sprintf("xfer pipe has %d filters; at most 255 fit in a frame", len(m.XferPipe)), nil)
	}
	version, _ := p.Version()
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, version, byte(len(m.XferPipe)))
	dst = append(dst, m.XferPipe...)
	var err error
	if len(m.XferPipe) == 0 {
		dst, err = encode(p, dst, m)
	} else {
		tmp := bufpool.Get(len(m.Payload) + bodyHint)
		*tmp, err = encode(p, (*tmp)[:0], m)
		if err == nil {
			dst, err = m.XferPipe.Pack(dst, *tmp)
			if err != nil {
				err = status.New(status.Unsupported, "cannot filter the frame", err)
			}
		}
		bufpool.Put(tmp)
	}
	if err != nil {
		return dst[:start], err
	}
	size := len(dst) - start - 4
	if size > math.MaxUint32 {
		return dst[:start], status.New(status.TooLarge, fmt.Sprintf("frame of %d bytes does not fit a 32-bit length", size), nil)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(size))
	return dst, nil
}

// HeaderEncoder is a Proto whose encoding is its header followed by the
// body's bytes as they are, such as rawproto: Pack then encodes the body
// straight after the header, with no copy. EncodeHeader appends the header
// alone; Encode must still append header and Payload, for any other user.
type HeaderEncoder interface {
	EncodeHeader(dst []byte, m *Message) ([]byte, error)
}

// encode appends p's encoding of m, its body encoded once.
func encode(p Proto, dst []byte, m *Message) ([]byte, error) {
	if he, ok := p.(HeaderEncoder); ok {
		dst, err := he.EncodeHeader(dst, m)
		if err != nil {
			return dst, err
		}
		return m.MarshalBody(dst)
	}
	if m.Body == nil {
		return p.Encode(dst, m)
	}
	body := bufpool.Get(bodyHint)
	defer bufpool.Put(body)
	var err error
	if *body, err = m.MarshalBody((*body)[:0]); err != nil {
		return dst, err
	}
	payload := m.Payload
	m.Payload = *body
	dst, err = p.Encode(dst, m)
	m.Payload = payload
	return dst, err
}

// bodyHint is the buffer a body is first encoded into: a typical RPC body
// fits, so encoding it does not grow the buffer.
const bodyHint = 1 << 10

// Unpack reads the one frame in frame, which Pack made, into m, refusing
// it past limit bytes as a socket would. m's Payload may alias frame.
func Unpack(p Proto, frame []byte, m *Message, limit int) error {
	if len(frame) < 4 {
		return status.New(status.BadMessage, "frame ends inside its length", nil)
	}
	if err := checkSize(frame[:4], limit); err != nil {
		return err
	}
	if len(frame) < envelopeHead || int(binary.BigEndian.Uint32(frame[:4])) != len(frame)-4 {
		return status.New(status.BadMessage, fmt.Sprintf("frame of %d bytes does not match its length prefix", len(frame)), nil)
	}
	version, _ := p.Version()
	rest, err := checkHead(frame[:envelopeHead], version)
	if err != nil {
		return err
	}
	m.Size = len(frame)
	inner, err := unfilter(m, frame[envelopeHead:envelopeHead+rest], int(frame[5]), limit, nil)
	if err != nil {
		return err
	}
	if err := p.Decode(inner, m); err != nil {
		return status.From(err, status.BadMessage, "malformed frame")
	}
	return nil
}

// reader is the buffered read side of a connection. It is used by one
// goroutine at a time.
type reader struct {
	br           *connReader
	limit        int
	inflateLimit int                // the most a frame's filters may produce
	filters      []byte             // the filter ids accepted; nil for any registered
	head         [envelopeHead]byte // scratch: a local array would escape through io.ReadFull
}

// readMessage reads one frame into m: the envelope, then p's header.
func (r *reader) readMessage(p Proto, m *Message) error {
	version, _ := p.Version()
	b, err := r.readFrame(m, version)
	if err != nil {
		return err
	}
	if err := p.Decode(b, m); err != nil {
		return status.From(err, status.BadMessage, "malformed frame")
	}
	return nil
}

// readFrame reads one envelope, checks its size against the limit before
// allocating anything and its version against version, sets m.XferPipe,
// and returns the inner bytes with the filters undone. The bytes live in
// storage m owns until m.Reset.
func (r *reader) readFrame(m *Message, version byte) ([]byte, error) {
	head := r.head[:]
	if _, err := io.ReadFull(r.br, head[:4]); err != nil {
		return nil, err
	}
	if err := checkSize(head[:4], r.limit); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r.br, head[4:]); err != nil {
		return nil, unexpected(err)
	}
	rest, err := checkHead(head, version)
	if err != nil {
		return nil, err
	}
	m.Size = rest + envelopeHead
	buf, err := r.readBody(m, rest)
	if err != nil {
		return nil, unexpected(err)
	}
	return unfilter(m, *buf, int(head[5]), r.inflateLimit, r.filters)
}

// checkSize refuses a frame whose length prefix passes limit, before
// anything is allocated for it.
func checkSize(prefix []byte, limit int) error {
	size := binary.BigEndian.Uint32(prefix)
	if uint64(size) > uint64(limit) {
		return status.New(status.TooLarge, fmt.Sprintf("frame of %d bytes exceeds the read limit of %d; raise the limit on both ends or send less", size, limit), nil)
	}
	if size < envelopeHead-4 {
		return status.New(status.BadMessage, fmt.Sprintf("frame of %d bytes is shorter than its header", size), nil)
	}
	return nil
}

// checkHead checks the envelope's head (size, version, npipe) and returns
// how many bytes follow it.
func checkHead(head []byte, version byte) (int, error) {
	if head[4] != version {
		return 0, status.New(status.Unsupported, fmt.Sprintf("frame has proto version %d, this end reads %d: both ends must use the same proto", head[4], version), nil)
	}
	size := binary.BigEndian.Uint32(head[:4])
	rest := int(size) - 2
	if npipe := int(head[5]); npipe > rest {
		return 0, status.New(status.BadMessage, fmt.Sprintf("frame of %d bytes cannot hold %d filter ids", size, npipe), nil)
	}
	return rest, nil
}

// unfilter reads the filter ids at the start of rest into m.XferPipe and
// returns the inner bytes with the filters undone, in storage m owns.
func unfilter(m *Message, rest []byte, npipe, limit int, accept []byte) ([]byte, error) {
	m.XferPipe = append(m.XferPipe[:0], rest[:npipe]...)
	inner := rest[npipe:]
	if npipe == 0 {
		return inner, nil
	}
	if err := m.XferPipe.Check(); err != nil {
		return nil, status.New(status.Unsupported, "frame uses an unknown filter", err)
	}
	if accept != nil {
		for _, id := range m.XferPipe {
			if !bytes.Contains(accept, []byte{id}) {
				return nil, status.New(status.Unsupported, fmt.Sprintf("frame uses filter %q, which this end does not accept (Config.Filters)", id), nil)
			}
		}
	}
	out := bufpool.Get(len(inner) * 2)
	var err error
	if *out, err = m.XferPipe.Unpack((*out)[:0], inner, limit); err != nil {
		bufpool.Put(out)
		return nil, status.New(status.BadMessage, "cannot undo the frame's filters", err)
	}
	m.hold(out)
	return *out, nil
}

// firstChunk is the most a frame's buffer holds before its bytes arrive:
// a length prefix is a claim, and memory follows what the peer has sent,
// doubling as it comes, never what it says it will send.
const firstChunk = 64 << 10

// readBody reads n bytes into a buffer m holds, growing the buffer with
// the bytes that arrive.
func (r *reader) readBody(m *Message, n int) (*[]byte, error) {
	buf := bufpool.Get(min(n, firstChunk))
	m.hold(buf)
	for len(*buf) < n {
		if len(*buf) == cap(*buf) {
			bigger := bufpool.Get(min(n, 2*cap(*buf)))
			*bigger = append((*bigger)[:0], *buf...)
			m.hold(bigger)
			buf = bigger
		}
		k := min(n, cap(*buf))
		got, err := io.ReadFull(r.br, (*buf)[len(*buf):k])
		*buf = (*buf)[:len(*buf)+got]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
