package socket

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/status"
)

// Proto turns messages into frames and back. A Proto serves one connection:
// Pack may be called from many goroutines at once, Unpack from one at a time.
type Proto interface {
	// Version returns the byte that marks the proto's frames and its name.
	Version() (byte, string)
	// Pack appends the frame carrying m to dst and returns the result.
	Pack(dst []byte, m *Message) ([]byte, error)
	// Unpack reads exactly one frame from r into m. After an error the
	// stream cannot be trusted and the connection should be closed.
	Unpack(r *Reader, m *Message) error
}

// ProtoFunc makes the Proto for one connection, so a proto may keep
// per-connection state, such as a cache of service-method strings.
type ProtoFunc func() Proto

// The envelope shared by tp's protos: a length prefix, so the reader takes
// a whole frame at once and can refuse it before allocating, and the filter
// pipe in clear, since it must be read before the rest can be undone:
//
//	size     uint32, big endian: bytes after this field
//	version  uint8: which proto packed the frame
//	npipe    uint8: number of xfer filters
//	pipe     [npipe]uint8: filter ids, in the order they were applied
//	inner    [size-2-npipe]byte: the proto's own encoding, filtered
//
// AppendFrame writes it, and Reader.ReadFrame reads it back.
const envelopeHead = 4 + 1 + 1

// AppendFrame appends to dst the envelope around inner(m's encoding),
// filtered through m.XferPipe. inner appends the proto's own encoding of m.
func AppendFrame(dst []byte, version byte, m *Message, inner func([]byte, *Message) ([]byte, error)) ([]byte, error) {
	if len(m.XferPipe) > math.MaxUint8 {
		return dst, status.New(status.InvalidArgument, fmt.Sprintf("xfer pipe has %d filters; at most 255 fit in a frame", len(m.XferPipe)), nil)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, version, byte(len(m.XferPipe)))
	dst = append(dst, m.XferPipe...)
	var err error
	if len(m.XferPipe) == 0 {
		dst, err = inner(dst, m)
	} else {
		tmp := bufpool.Get(len(m.Payload) + 256)
		*tmp, err = inner((*tmp)[:0], m)
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

// Reader is the buffered read side of a connection, as a Proto sees it.
// It is used by one goroutine at a time.
type Reader struct {
	br    *bufio.Reader
	limit int
	head  [envelopeHead]byte // scratch: a local array would escape through io.ReadFull
}

// NewReader returns a Reader over br that refuses frames larger than limit
// bytes. Sockets make their own; this is for tests and for protos used
// without a Socket.
func NewReader(br *bufio.Reader, limit int) *Reader { return &Reader{br: br, limit: limit} }

// Read reads from the buffered connection.
func (r *Reader) Read(p []byte) (int, error) { return r.br.Read(p) }

// Limit returns the largest frame, in bytes, that the reader accepts.
func (r *Reader) Limit() int { return r.limit }

// ReadFrame reads one envelope (see AppendFrame), checks its size against
// the limit before allocating anything and its version against version,
// sets m.XferPipe, and returns the inner bytes with the filters undone.
// The bytes live in storage m owns until m.Reset.
func (r *Reader) ReadFrame(m *Message, version byte) ([]byte, error) {
	head := r.head[:]
	if _, err := io.ReadFull(r.br, head[:4]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(head[:4])
	if uint64(size) > uint64(r.limit) {
		return nil, status.New(status.TooLarge, fmt.Sprintf("frame of %d bytes exceeds the read limit of %d; raise the limit on both ends or send less", size, r.limit), nil)
	}
	if size < envelopeHead-4 {
		return nil, status.New(status.BadMessage, fmt.Sprintf("frame of %d bytes is shorter than its header", size), nil)
	}
	if _, err := io.ReadFull(r.br, head[4:]); err != nil {
		return nil, unexpected(err)
	}
	if head[4] != version {
		return nil, status.New(status.Unsupported, fmt.Sprintf("frame has proto version %d, this end reads %d: both ends must use the same proto", head[4], version), nil)
	}
	npipe := int(head[5])
	rest := int(size) - 2
	if npipe > rest {
		return nil, status.New(status.BadMessage, fmt.Sprintf("frame of %d bytes cannot hold %d filter ids", size, npipe), nil)
	}
	m.Size = int(size) + 4
	buf, err := r.readBody(m, rest)
	if err != nil {
		return nil, unexpected(err)
	}
	m.XferPipe = append(m.XferPipe[:0], (*buf)[:npipe]...)
	inner := (*buf)[npipe:]
	if npipe == 0 {
		return inner, nil
	}
	if err := m.XferPipe.Check(); err != nil {
		return nil, status.New(status.Unsupported, "frame uses an unknown filter", err)
	}
	out := bufpool.Get(len(inner) * 2)
	if *out, err = m.XferPipe.Unpack((*out)[:0], inner, r.limit); err != nil {
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
func (r *Reader) readBody(m *Message, n int) (*[]byte, error) {
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
