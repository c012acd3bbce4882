// Package socket is tp's transport layer: it wraps a net.Conn into a
// Socket that reads and writes whole messages through a Proto.
//
// The socket package defines Message, the Proto interface and the frame
// envelope around every proto's encoding (Pack, Unpack). A proto encodes
// only a header beside an opaque body: the socket encodes the body once,
// with the body codec, and runs the xfer filters. The protos live in
// tp/proto/..., the body codecs in tp/codec and the filters in tp/xfer.
package socket

import (
	"context"
	"encoding/binary"
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
	DefaultFrameTimeout = time.Minute
	DefaultWriteTimeout = 30 * time.Second
	DefaultInflateLimit = 4 << 20
)

// Config tunes a Socket. The zero value is ready to use.
type Config struct {
	// ReadLimit is the largest frame accepted, in bytes. A larger one is
	// refused before anything is allocated for it. 0 means DefaultReadLimit.
	ReadLimit int
	// WriteLimit is the largest frame written, in bytes; a larger message
	// fails with status TooLarge before anything is sent. 0 means
	// DefaultReadLimit, as the other end most likely refuses more.
	WriteLimit int
	// IdleTimeout closes the connection's reads (ReadMessage fails with
	// status Timeout) when no frame starts for this long. 0 means never:
	// a peer that only listens for pushes may be quiet for a long time.
	IdleTimeout time.Duration
	// FrameTimeout bounds how long a frame may take to arrive once its first
	// byte has, so a peer dripping bytes cannot hold a reader forever.
	// 0 means DefaultFrameTimeout; negative means no bound. Frames in tp's
	// envelope (see Pack) that are already whole in the buffer skip
	// the timer; a proto with framing of its own pays a deadline update
	// per frame.
	FrameTimeout time.Duration
	// ReadBuffer is the most the read buffer holds. The buffer is taken
	// from a pool when bytes arrive (small at first, this size once reads
	// fill it) and given back once they are consumed, so an idle
	// connection holds none. 0 means DefaultReadBuffer.
	ReadBuffer int
	// MaxPending is how many bytes of frames may wait for the connection
	// before writers block. 0 means DefaultMaxPending.
	MaxPending int
	// FlushTimeout bounds how long Close waits to write what is pending.
	// 0 means DefaultFlushTimeout.
	FlushTimeout time.Duration
	// InflateLimit is the most bytes the xfer filters of one frame may
	// produce (a 500-byte gzip frame can inflate to the read limit). 0
	// means the smaller of ReadLimit and DefaultInflateLimit.
	InflateLimit int
	// Filters are the xfer filter ids a frame may use; a frame with any
	// other is refused (Unsupported). nil accepts every registered filter.
	Filters []byte
	// WriteTimeout bounds how long one write to the connection may block:
	// a peer that stops reading (or a network that stops forwarding) fails
	// it, and the connection is closed, freeing every writer waiting on
	// it. It fires between WriteTimeout and 1.5 times it. 0 means
	// DefaultWriteTimeout; negative means no bound.
	WriteTimeout time.Duration
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
	reader       reader
	limit        atomic.Int64
	writeLimit   int
	idleTimeout  time.Duration
	frameTimeout time.Duration
	userDeadline atomic.Pointer[time.Time] // from SetReadDeadline
	userSeen     *time.Time                // the user deadline armed already
	armed        time.Time                 // the read deadline the reader set last
	flushTimeout time.Duration
	w            writer
	closeOnce    sync.Once
	done         chan struct{} // closed by Close
	closeErr     error
}

// ErrClosed is the status of a write on a socket that was closed first:
// the message was not sent at all. Compare it by identity (==), since
// errors.Is matches every status of its code.
var ErrClosed = status.New(status.ConnClosed, "socket is closed", nil)

// New wraps conn in a Socket that frames messages with newProto's Proto.
// TCP options in cfg are applied to a *net.TCPConn (also under TLS); an
// error setting them is returned with the socket still usable.
func New(conn net.Conn, newProto ProtoFunc, cfg Config) (*Socket, error) {
	if newProto == nil {
		panic("socket: New with a nil ProtoFunc")
	}
	s := &Socket{conn: conn, proto: newProto(), done: make(chan struct{})}
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
	if cfg.WriteLimit <= 0 {
		cfg.WriteLimit = DefaultReadLimit
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = DefaultFrameTimeout
	}
	s.flushTimeout = cfg.FlushTimeout
	s.writeLimit, s.idleTimeout, s.frameTimeout = cfg.WriteLimit, cfg.IdleTimeout, cfg.FrameTimeout
	s.limit.Store(int64(cfg.ReadLimit))
	if cfg.InflateLimit <= 0 {
		cfg.InflateLimit = min(cfg.ReadLimit, DefaultInflateLimit)
	}
	s.reader.inflateLimit, s.reader.filters = cfg.InflateLimit, cfg.Filters
	s.reader.br = newConnReader(conn, cfg.ReadBuffer)
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s.w.init(conn, cfg.MaxPending)
	s.w.conn, s.w.timeout = conn, cfg.WriteTimeout
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
	if err := s.armDeadlines(); err != nil {
		return readError(err)
	}
	if err := s.reader.readMessage(s.proto, m); err != nil {
		return readError(err)
	}
	if !m.Type.Valid() {
		return status.New(status.Unsupported, fmt.Sprintf("message has unknown type %d", m.Type), nil)
	}
	return nil
}

// armDeadlines applies the idle timeout while waiting for a frame to start
// and the frame timeout once one has. Timer updates are not free, so it
// touches the conn's deadline only when it must: a frame already whole in
// the buffer needs no deadline, and the idle deadline is set with slack and
// left alone while it is still far enough away.
func (s *Socket) armDeadlines() error {
	if s.idleTimeout <= 0 && s.frameTimeout <= 0 {
		return nil
	}
	if s.frameBuffered() {
		return nil
	}
	if s.reader.br.Buffered() == 0 {
		s.deadline(s.idleTimeout, true)
		if _, err := s.reader.br.Peek(1); err != nil {
			return err
		}
		if s.frameBuffered() {
			return nil
		}
	}
	s.deadline(s.frameTimeout, false)
	return nil
}

// frameBuffered reports whether a whole frame of tp's envelope is in the
// read buffer, so reading it cannot block.
func (s *Socket) frameBuffered() bool {
	br := s.reader.br
	if br.Buffered() < 4 {
		return false
	}
	p, _ := br.Peek(4)
	return br.Buffered()-4 >= int(binary.BigEndian.Uint32(p))
}

// deadline sets the read deadline to d from now (none for d <= 0), or to
// the caller's SetReadDeadline if that is earlier. With slack, the deadline
// is set 1.5 d away and kept while it is at least d away: an idle timeout
// then fires between d and 1.5 d, for a timer update per d/2 rather than
// per frame. Only the reading goroutine calls it.
func (s *Socket) deadline(d time.Duration, slack bool) {
	var now, t time.Time
	if d > 0 {
		now = time.Now()
		t = now.Add(d)
		if slack {
			t = now.Add(d + d/2)
		}
	}
	u := s.userDeadline.Load()
	if u != nil && !u.IsZero() && (t.IsZero() || u.Before(t)) {
		t = *u
	}
	if u == s.userSeen {
		if t.Equal(s.armed) {
			return
		}
		if slack && !t.IsZero() && !s.armed.IsZero() && !s.armed.After(t) && s.armed.Sub(now) >= d {
			return // still far enough away
		}
	}
	s.userSeen, s.armed = u, t
	s.conn.SetReadDeadline(t)
}

// WriteMessage packs m and writes it, sharing the syscall with concurrent
// writers. It waits for room among the frames queued for the connection
// (Config.MaxPending) until ctx ends (a frame that finds room goes out
// even if ctx has ended: ctx bounds the wait, not the attempt); a ctx that
// can end also never waits on the syscall itself (see writer). When it returns, m's buffers are free
// for reuse; the frame may still be on its way to the kernel. Errors are
// *status.Status values: ConnClosed after Close, WriteFailed when the
// connection broke, Timeout or Canceled when ctx ended first (nothing of
// the frame was written), and the pack error (InvalidArgument,
// Unsupported, TooLarge) when m cannot be packed.
func (s *Socket) WriteMessage(ctx context.Context, m *Message) error {
	return s.writeMessage(ctx, m, waitForRoom)
}

// QueueMessage is WriteMessage for a goroutine that must never wait for a
// writer, such as the one reading the connection: it queues m even past
// Config.MaxPending and leaves the syscall to the connection's flusher.
// Past four times MaxPending the peer has stopped reading what it is sent,
// and QueueMessage fails with WriteFailed.
func (s *Socket) QueueMessage(m *Message) error {
	return s.writeMessage(context.Background(), m, neverWait)
}

func (s *Socket) writeMessage(ctx context.Context, m *Message, mode waitMode) error {
	if mode == waitForRoom {
		if err := s.w.awaitRoom(ctx); err != nil {
			return err
		}
	}
	bp := bufpool.Get(len(m.Payload) + len(m.ServiceMethod) + 512)
	frame, err := Pack(s.proto, (*bp)[:0], m)
	if err != nil {
		bufpool.Put(bp)
		return status.From(err, status.BadMessage, "cannot pack the message")
	}
	m.Size = len(frame)
	if len(frame) > s.writeLimit {
		bufpool.Put(bp)
		return status.New(status.TooLarge, fmt.Sprintf("message of %d bytes exceeds the write limit of %d", len(frame), s.writeLimit), nil)
	}
	err = s.w.write(ctx, frame, mode)
	*bp = frame
	bufpool.Put(bp)
	if err != nil {
		return writeError(err)
	}
	return nil
}

// writeError classifies a failed write: a connection the peer closed or
// reset is closed, anything else (a write deadline, say) failed to write.
func writeError(err error) error {
	var st *status.Status
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
		return status.New(status.ConnClosed, "connection broken while writing", err)
	}
	return status.New(status.WriteFailed, "cannot write the message", err)
}

// readError classifies what Unpack returned.
func readError(err error) error {
	var st *status.Status
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, os.ErrDeadlineExceeded):
		return status.New(status.Timeout, "read deadline passed", err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
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

// Buffered returns how many bytes were read from the connection and not
// yet taken by ReadMessage: 0 means no more frames are on their way but
// the connection's own. For the reading goroutine only.
func (s *Socket) Buffered() int { return s.reader.br.Buffered() }

// Trim gives the write buffers back to their pool if nothing was written
// since the last Trim (read buffers go back as soon as they are drained).
// Call it periodically, as a Peer does every second, so an idle
// connection holds no buffer.
func (s *Socket) Trim() { s.w.trim() }

// Close writes what is pending, waiting at most the flush timeout, and
// closes the connection. A read in progress returns ConnClosed. Close is
// idempotent and returns the connection's close error.
func (s *Socket) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.flushTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the flush bounded by ctx as well as by the flush
// timeout: what is still pending when either ends is dropped (a frame cut
// short does no harm, as the connection closes).
func (s *Socket) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		deadline := time.Now().Add(s.flushTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		stop := context.AfterFunc(ctx, func() { _ = s.conn.SetWriteDeadline(time.Now()) })
		s.w.close(deadline)
		stop()
		if err := s.conn.Close(); !errors.Is(err, net.ErrClosed) { // a failed write closed it already
			s.closeErr = err
		}
		close(s.done)
	})
	return s.closeErr
}

// Done is closed once Close has run.
func (s *Socket) Done() <-chan struct{} { return s.done }

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

// SetReadDeadline sets a deadline for the reads of ReadMessage; the zero
// time removes it. The idle and frame timeouts still apply when earlier.
func (s *Socket) SetReadDeadline(t time.Time) error {
	s.userDeadline.Store(&t)
	return s.conn.SetReadDeadline(t)
}
