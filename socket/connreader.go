package socket

import (
	"io"
	"net"
	"syscall"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
)

// connReader is a buffered reader of a connection that holds its buffer
// only while bytes are arriving: once what it read is consumed, the
// buffer goes back to a pool, and an idle connection holds none. On a
// connection that offers its descriptor (TCP and unix sockets), it waits
// for the next bytes through the runtime's poller with no buffer at all,
// at no extra syscall: a read that finds nothing (EAGAIN) gives the buffer
// back before the wait, as the runtime's own read would wait. Other
// connections (TLS, net.Pipe, wrappers) read through their Read method
// into a buffer held during the wait.
type connReader struct {
	src  io.Reader
	raw  syscall.RawConn // nil: read src
	size int             // the most the buffer holds
	next int             // what the next buffer holds: small until reads fill it
	buf  *[]byte         // nil when empty
	r, w int
	late error // an error a read returned with bytes, for the next read

	// The raw read's state, kept here so its function is made once.
	rawRead func(fd uintptr) bool
	p       []byte
	n       int
	err     error
	own     bool
}

// firstRead is the buffer a read starts with after the reader was
// drained: most frames are small, and a larger one makes the next buffer
// full size.
const firstRead = 4 << 10

func newConnReader(conn net.Conn, size int) *connReader {
	b := &connReader{src: conn, size: size, next: min(size, firstRead)}
	// Only the standard library's own sockets: a wrapper that embeds one
	// and reads through its own Read method must be read through it.
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	}
	if sc != nil && rawReadable {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
			b.rawRead = b.readFD
		}
	}
	if b.raw == nil {
		// A conn read through its Read holds the buffer while it waits
		// anyway: small buffers would only cost more reads.
		b.next = size
	}
	return b
}

// Buffered returns how many bytes can be read without waiting.
func (b *connReader) Buffered() int { return b.w - b.r }

// Peek returns the next n bytes without consuming them, waiting for them;
// n must not pass the buffer's size.
func (b *connReader) Peek(n int) ([]byte, error) {
	for b.Buffered() < n {
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
	return (*b.buf)[b.r : b.r+n], nil
}

// Read reads into p what is buffered, or else reads the connection once:
// into p itself when p is as large as the buffer.
func (b *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.Buffered() == 0 {
		if len(p) >= b.size {
			return b.readConn(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += n
	if b.r == b.w {
		b.drop()
	}
	return n, nil
}

// fill reads at least one more byte into the buffer, keeping what is
// there, or returns an error (and holds no buffer if it is empty).
func (b *connReader) fill() error {
	if err := b.late; err != nil {
		b.late = nil
		if b.Buffered() == 0 {
			b.drop()
		}
		return err
	}
	if b.buf == nil {
		b.get()
	} else if b.r > 0 { // slide what is left to the front
		b.w = copy(*b.buf, (*b.buf)[b.r:b.w])
		b.r = 0
	} else if b.w == len(*b.buf) { // full, and a frame wants more
		bigger := bufpool.Get(2 * b.w)
		*bigger = append((*bigger)[:0], (*b.buf)[:b.w]...)
		*bigger = (*bigger)[:cap(*bigger)]
		bufpool.Put(b.buf)
		b.buf = bigger
	}
	n, err := b.readConn((*b.buf)[b.w:])
	if b.buf == nil { // given back for a wait that ended in an error
		b.r, b.w = 0, 0
		return err
	}
	b.w += n
	if n > 0 && err != nil { // the bytes first: the error comes with the next read
		b.late, err = err, nil
	}
	if b.w == len(*b.buf) {
		b.next = b.size // reads fill the buffer: give the next one room
	} else if b.w < firstRead/2 && b.raw != nil {
		b.next = min(b.size, firstRead)
	}
	if err != nil && b.Buffered() == 0 {
		b.drop()
	}
	return err
}

// get takes a buffer from the pool.
func (b *connReader) get() {
	b.buf = bufpool.Get(b.next)
	*b.buf = (*b.buf)[:cap(*b.buf)]
	b.r, b.w = 0, 0
}

// drop gives the buffer back to the pool.
func (b *connReader) drop() {
	if b.buf != nil {
		bufpool.Put(b.buf)
		b.buf = nil
	}
	b.r, b.w = 0, 0
}

// readConn reads once into p: at least one byte, or an error.
func (b *connReader) readConn(p []byte) (int, error) {
	if b.raw == nil {
		for range 100 {
			n, err := b.src.Read(p)
			if n > 0 || err != nil {
				return n, err
			}
		}
		return 0, io.ErrNoProgress
	}
	// While nothing has arrived, the buffer p points into goes back to the
	// pool only if it is the reader's own and empty: then fill gets it again.
	b.p, b.n, b.err = p, 0, nil
	b.own = b.buf != nil && b.Buffered() == 0 && &p[0] == &(*b.buf)[b.w]
	err := b.raw.Read(b.rawRead)
	n, rerr := b.n, b.err
	b.p, b.err = nil, nil
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Err: rerr}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// readFD is the raw read: once, into p; on EAGAIN it gives the buffer
// back and has the poller wait.
func (b *connReader) readFD(fd uintptr) bool {
	if b.own && b.buf == nil {
		b.get()
		b.p = (*b.buf)[b.w:]
	}
	b.n, b.err = readFD(fd, b.p)
	if b.err == syscall.EAGAIN {
		if b.own {
			bufpool.Put(b.buf)
			b.buf = nil
		}
		return false // wait for the poller, holding nothing
	}
	return true
}
