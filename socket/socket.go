// Package socket is tp's transport layer: it wraps a net.Conn into a
// Socket that reads and writes whole messages through a Proto.
//
// The socket package defines Message, the Proto interface and the frame
// envelope tp's protos share; the protos themselves live in tp/proto/...,
// the body codecs in tp/codec and the byte filters in tp/xfer.
package socket

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/status"
)

// Defaults for Config's zero values.
const (
	DefaultReadLimit    = 64 << 20 // 64 MiB
	DefaultReadBuffer   = 32 << 10
	DefaultMaxPending   = 1 << 20
	DefaultFlushTimeout = 5 * time.Second
)

// Config tunes a Socket. The zero value is ready to use.
type Config struct {
	// ReadLimit is the largest frame accepted, in bytes. A larger one is
	// refused before anything is allocated for it. 0 means DefaultReadLimit.
	ReadLimit int
	// ReadBuffer is the size of the buffered reader. 0 means
	// DefaultReadBuffer.
	ReadBuffer int
	// MaxPending is how many bytes of frames may wait for the connection
	// before writers block. 0 means DefaultMaxPending.
	MaxPending int
	// FlushTimeout bounds how long Close waits to write what is pending.
	// 0 means DefaultFlushTimeout.
	FlushTimeout time.Duration
	// Delay leaves Nagle's algorithm on. By default TCP_NODELAY is set,
	// as an RPC wants each message out at once; the writer batches anyway.
	Delay bool
	// KeepAlive sets the TCP keep-alive period; negative turns keep-alive
	// off, 0 leaves the connection as it came (Go's dialer and listener
	// enable it).
	KeepAlive time.Duration
	// SendBuffer and RecvBuffer set the kernel's SO_SNDBUF and SO_RCVBUF,
	// in bytes; 0 leaves the system's default.
	SendBuffer, RecvBuffer int
}

// Socket reads and writes messages on one connection. Writes are safe from
// many goroutines and share syscalls; reads must come from one goroutine.
type Socket struct {
	conn         net.Conn
	proto        Proto
	reader       Reader
	limit        atomic.Int64
	flushTimeout time.Duration
	w            writer
	id           atomic.Pointer[string]
	swap         sync.Map
	closeOnce    sync.Once
	closeErr     error
}

var errClosed = status.New(status.ConnClosed, "socket is closed", nil)

// New wraps conn in a Socket that frames messages with newProto's Proto.
// TCP options in cfg are applied to a *net.TCPConn (also under TLS); an
// error setting them is returned with the socket still usable.
func New(conn net.Conn, newProto ProtoFunc, cfg Config) (*Socket, error) {
	if newProto == nil {
		panic("socket: New with a nil ProtoFunc")
	}
	s := &Socket{conn: conn, proto: newProto()}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	s.flushTimeout = cfg.FlushTimeout
	s.limit.Store(int64(cfg.ReadLimit))
	s.reader.br = bufio.NewReaderSize(conn, cfg.ReadBuffer)
	s.w.init(conn, cfg.MaxPending)
	return s, applyTCP(conn, cfg)
}

func applyTCP(conn net.Conn, cfg Config) error {
	var tc *net.TCPConn
	switch c := conn.(type) {
	case *net.TCPConn:
		tc = c
	case interface{ NetConn() net.Conn }: // *tls.Conn
		tc, _ = c.NetConn().(*net.TCPConn)
	}
	if tc == nil {
		return nil
	}
	errs := []error{tc.SetNoDelay(!cfg.Delay)}
	switch {
	case cfg.KeepAlive < 0:
		errs = append(errs, tc.SetKeepAlive(false))
	case cfg.KeepAlive > 0:
		errs = append(errs, tc.SetKeepAlive(true), tc.SetKeepAlivePeriod(cfg.KeepAlive))
	}
	if cfg.SendBuffer > 0 {
		errs = append(errs, tc.SetWriteBuffer(cfg.SendBuffer))
	}
	if cfg.RecvBuffer > 0 {
		errs = append(errs, tc.SetReadBuffer(cfg.RecvBuffer))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("socket: setting TCP options: %w", err)
	}
	return nil
}

// ReadMessage reads the next message into m, which should be empty. Only
// one goroutine may read at a time. Errors are *status.Status values:
// ConnClosed when the connection ends, Timeout when a read deadline passes,
// TooLarge, BadMessage or Unsupported for a frame that cannot be read. After
// any error the connection is out of step and should be closed.
func (s *Socket) ReadMessage(m *Message) error {
	s.reader.limit = int(s.limit.Load())
	if err := s.proto.Unpack(&s.reader, m); err != nil {
		return readError(err)
	}
	if !m.Type.Valid() {
		return status.New(status.Unsupported, fmt.Sprintf("message has unknown type %d", m.Type), nil)
	}
	return nil
}

// WriteMessage packs m and writes it, sharing the syscall with concurrent
// writers. When it returns, m's buffers are free for reuse; the frame may
// still be on its way to the kernel. Errors are *status.Status values:
// ConnClosed after Close, WriteFailed when the connection broke, and the
// pack error (InvalidArgument, Unsupported, TooLarge) when m cannot be packed.
func (s *Socket) WriteMessage(m *Message) error {
	bp := bufpool.Get(len(m.Payload) + len(m.ServiceMethod) + 512)
	frame, err := s.proto.Pack((*bp)[:0], m)
	if err != nil {
		bufpool.Put(bp)
		return status.From(err, status.BadMessage, "cannot pack the message")
	}
	m.Size = len(frame)
	err = s.w.write(frame)
	*bp = frame
	bufpool.Put(bp)
	if err != nil {
		return status.From(err, status.WriteFailed, "cannot write the message")
	}
	return nil
}

// readError classifies what Unpack returned.
func readError(err error) error {
	var st *status.Status
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, os.ErrDeadlineExceeded):
		return status.New(status.Timeout, "read deadline passed", err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return status.New(status.ConnClosed, "connection closed", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return status.New(status.ConnClosed, "connection closed in the middle of a frame", err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) {
		return status.New(status.ConnClosed, "connection broken", err)
	}
	return status.New(status.BadMessage, "malformed frame", err)
}

// Close writes what is pending, waiting at most the flush timeout, and
// closes the connection. A read in progress returns ConnClosed. Close is
// idempotent and returns the connection's close error.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.flushTimeout))
		s.w.close()
		s.closeErr = s.conn.Close()
	})
	return s.closeErr
}

// ID returns the socket's ID: the remote address unless SetID changed it.
func (s *Socket) ID() string {
	if id := s.id.Load(); id != nil {
		return *id
	}
	return s.conn.RemoteAddr().String()
}

// SetID sets the socket's ID.
func (s *Socket) SetID(id string) { s.id.Store(&id) }

// Swap returns the socket's key/value store, for the application and
// plugins to keep per-connection state in.
func (s *Socket) Swap() *sync.Map { return &s.swap }

// ReadLimit returns the largest frame, in bytes, the socket accepts.
func (s *Socket) ReadLimit() int { return int(s.limit.Load()) }

// SetReadLimit changes the largest frame accepted, from the next frame on.
func (s *Socket) SetReadLimit(n int) { s.limit.Store(int64(n)) }

// Proto returns the socket's proto.
func (s *Socket) Proto() Proto { return s.proto }

// Conn returns the wrapped connection. Reading from or writing to it
// directly corrupts the message stream; it is there for deadlines,
// addresses and TLS state.
func (s *Socket) Conn() net.Conn { return s.conn }

// LocalAddr returns the local network address.
func (s *Socket) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// RemoteAddr returns the remote network address.
func (s *Socket) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// SetReadDeadline sets the deadline for the reads of ReadMessage.
func (s *Socket) SetReadDeadline(t time.Time) error { return s.conn.SetReadDeadline(t) }

// FD calls fn with the connection's file descriptor, which is valid only
// during the call. It fails for connections without one, such as net.Pipe.
func (s *Socket) FD(fn func(fd uintptr)) error {
	c := s.conn
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("socket: %T has no file descriptor", s.conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(fn)
}
