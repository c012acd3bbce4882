package tp

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
	"github.com/seed-a9a850dd/tp/xfer"
)

// InitialStreamWindow is the credit each side of a new stream starts
// with, in frame bytes: what the opener may send before the accepting side
// says more. A peer whose StreamWindow is larger grants the rest at once.
const InitialStreamWindow = 64 << 10

// frameCost is what a DATA frame takes from the credit: its bytes on the
// wire, and a constant for what holding it costs beyond them, so a flood
// of empty messages is bounded too. Both ends count the same.
func frameCost(m *socket.Message) int64 { return int64(m.Size) + 64 }

// StreamCtx is what a stream handler sees of the stream's opening: its
// service method, the meta it was opened with (InputMeta), the session
// and the stream's context.
type StreamCtx interface {
	PushCtx
}

// Stream is a bidirectional flow of messages on a session, opened by
// either end (Session.OpenStream) and served by a stream handler at the
// other (Router.HandleStream), beside the session's calls. Each direction
// has its own flow control: a sender waits while its reader has all of
// StreamWindow unread, and no other stream or call waits with it.
//
// One goroutine may Send (and CloseSend) while another Recvs; Send is not
// for several goroutines at once, nor is Recv.
type Stream struct {
	sess    *Session
	cn      *conn
	id      uint32
	method  string
	local   bool // this end opened it
	codec   byte
	pipe    xfer.Pipe
	header  socket.Meta // the meta it was opened with
	plugins *plugins
	route   string
	window  int64 // this end's StreamWindow
	start   time.Time

	ctx    context.Context
	cancel context.CancelCauseFunc

	sendMu sync.Mutex // one Send or CloseSend at a time, in order on the wire
	recvMu sync.Mutex // one Recv at a time

	mu         sync.Mutex
	in         []*socket.Message // DATA read and not yet received
	inHead     int
	closedIn   bool        // the peer sent CLOSE
	trailer    socket.Meta // the meta of the peer's CLOSE or END
	received   int64       // credit the peer's DATA used
	granted    int64       // credit granted to the peer, the initial window included
	consumed   int64       // credit of DATA received by Recv, not yet granted again
	credit     int64       // what this end may still send
	closedOut  bool        // this end sent CLOSE
	outTrailer socket.Meta // sent with CLOSE or END
	ended      bool
	err        *Status       // why it ended; nil: cleanly
	stopCtx    func() bool   // stops the AfterFunc that resets the stream when its context ends
	recvReady  chan struct{} // signalled when DATA, CLOSE or the end arrive
	sendReady  chan struct{} // signalled when credit or the end arrive
}

func newStream(s *Session, cn *conn, m *socket.Message, local bool) *Stream {
	st := &Stream{sess: s, cn: cn, id: m.Seq, method: m.ServiceMethod, local: local, codec: m.BodyCodec,
		window: int64(s.peer.cfg.StreamWindow), recvReady: make(chan struct{}, 1), sendReady: make(chan struct{}, 1),
		granted: InitialStreamWindow, credit: InitialStreamWindow}
	st.pipe = append(st.pipe, m.XferPipe...)
	st.header.AddAll(&m.Meta)
	if st.codec == 0 {
		st.codec = s.peer.cfg.BodyCodec
	}
	if s.peer.cfg.countTime {
		st.start = time.Now()
	}
	return st
}

// OpenStream opens a stream to the stream handler of method at the other
// end. The stream lives until it ends (Recv returns io.EOF or an error),
// Close or Reset is called, ctx ends (the other end then sees CodeCanceled
// or CodeTimeout), or the connection does. settings set the opening's
// meta, the body codec and filters of every message; ctx's deadline
// travels, as a call's does. It fails at once when the peer's tp does not
// know streams; a refusal by the other end (no such route, too many
// streams) comes from the first Send or Recv.
func (s *Session) OpenStream(ctx context.Context, method string, settings ...MessageSetting) (*Stream, error) {
	p := s.peer
	if p.closing.Load() {
		return nil, errPeerClosing
	}
	if ctx.Err() != nil {
		return nil, ctxStatus(ctx, "before the stream opened")
	}
	cn, st := s.conn(ctx)
	if st != nil {
		return nil, st
	}
	select { // an accepted session may not have read the peer's hello yet
	case <-cn.greeted:
	case <-cn.ctx.Done():
		return nil, cn.endStatus(NewStatus(CodeConnClosed, "connection closed before the stream opened", nil))
	case <-ctx.Done():
		return nil, ctxStatus(ctx, "waiting for the peer's hello")
	}
	if !cn.streamsOK.Load() {
		return nil, NewStatus(CodeUnsupported, "the peer's tp does not know streams; upgrade it", nil)
	}
	m := s.message(ctx, socket.TypeOpen, method, nil, settings)
	defer socket.ReleaseMessage(m)
	str := newStream(s, cn, m, true)
	str.plugins = p.plugins
	str.route = method
	str.ctx, str.cancel = context.WithCancelCause(ctx)
	if !cn.streams.open(str) {
		return nil, cn.endStatus(NewStatus(CodeConnClosed, "connection closed before the stream opened", nil))
	}
	m.Seq = str.id
	str.watchContext()
	if st := run(p.plugins.streamOpen, StreamOpenPlugin.StreamOpen, str); st != nil {
		str.end(st, false)
		return nil, st
	}
	m.Meta.Reset() // the hooks may have set some (tracing's context)
	m.Meta.AddAll(&str.header)
	if err := cn.sock.WriteMessage(ctx, m); err != nil {
		st := s.writeFailed(cn, err, "cannot open the stream")
		str.end(st, false)
		return nil, st
	}
	str.grantRest()
	return str, nil
}

// watchContext resets the stream when its context ends first.
func (st *Stream) watchContext() {
	ctx := st.ctx
	stop := context.AfterFunc(ctx, func() { st.abort(ctxStatus(ctx, "on the stream")) })
	st.mu.Lock()
	st.stopCtx = stop
	st.mu.Unlock()
}

// grantRest grants the peer what this end's window holds beyond the
// initial one.
func (st *Stream) grantRest() {
	if extra := st.window - InitialStreamWindow; extra > 0 {
		st.mu.Lock()
		st.granted += extra
		st.mu.Unlock()
		st.control(socket.TypeWindow, nil, binary.AppendUvarint(nil, uint64(extra)))
	}
}

// control queues a stream control frame; it never waits.
func (st *Stream) control(t socket.Type, reason *Status, payload []byte, meta ...*socket.Meta) {
	m := socket.AcquireMessage()
	m.Type, m.Seq, m.Status, m.Payload = t, st.id, reason, payload
	for _, md := range meta {
		m.Meta.AddAll(md)
	}
	st.cn.sock.QueueMessage(m)
	socket.ReleaseMessage(m)
}

// Session is the session the stream is on.
func (st *Stream) Session() *Session { return st.sess }

// ServiceMethod is the route the stream was opened to.
func (st *Stream) ServiceMethod() string { return st.method }

// ID is the stream's id on this end of its connection: even for streams
// this end opened, odd for the other end's (whose id there is one less).
func (st *Stream) ID() uint32 { return st.id }

// BodyCodec is the codec id of the stream's messages, chosen by the opener.
func (st *Stream) BodyCodec() byte { return st.codec }

// Opened reports whether this end opened the stream.
func (st *Stream) Opened() bool { return st.local }

// Header is the meta the stream was opened with. A StreamOpen hook at the
// opener may add to it before the OPEN goes out (tracing puts its context
// there); otherwise read it only.
func (st *Stream) Header() *Meta { return &st.header }

// SetContext replaces the context Context returns, for StreamOpen hooks
// (tracing carries its span this way); ctx must derive from Context, so
// it ends with the stream.
func (st *Stream) SetContext(ctx context.Context) { st.ctx = ctx }

// Trailer is the meta the other end sent with its last frame (CLOSE or
// END); complete once Recv has returned io.EOF or an error.
func (st *Stream) Trailer() *Meta {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := new(socket.Meta)
	t.AddAll(&st.trailer)
	return t
}

// SetTrailer sets a meta pair sent with this end's last frame: CloseSend's
// CLOSE, or the END of a handler's return, Close or Reset.
func (st *Stream) SetTrailer(key, value string) {
	st.mu.Lock()
	st.outTrailer.Set(key, value)
	st.mu.Unlock()
}

// Context ends when the stream does: both ends done, a reset from either
// end, the opener's context, the deadline it travelled with, or the
// connection's end. Its cause says which.
func (st *Stream) Context() context.Context { return st.ctx }

// Err is why the stream ended: nil while it runs or when it ended
// cleanly.
func (st *Stream) Err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil {
		return nil
	}
	return st.err
}

// Send sends v, encoded with the stream's body codec; a []byte is sent as
// it is (already encoded). It waits while the reader at the other end has
// the whole window unread, until the stream's context ends. After the
// other end ended the stream cleanly it returns io.EOF; after a reset, its
// status.
func (st *Stream) Send(v any) error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	if err := st.awaitCredit(); err != nil {
		return err
	}
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	m.Type, m.Seq, m.BodyCodec = socket.TypeData, st.id, st.codec
	m.XferPipe = append(m.XferPipe, st.pipe...)
	if b, ok := v.([]byte); ok {
		m.Payload = b
	} else {
		m.Body = v
	}
	if err := st.cn.sock.WriteMessage(st.ctx, m); err != nil {
		se := status.From(err, CodeWriteFailed, "cannot send on the stream")
		if st.ctx.Err() != nil {
			st.abort(ctxStatus(st.ctx, "on the stream"))
			return st.sendErr()
		}
		if code := se.Code(); code == CodeInvalidArgument || code == CodeUnsupported || code == CodeTooLarge {
			return se // this message only: the stream goes on
		}
		st.end(se, false)
		return se
	}
	st.mu.Lock()
	st.credit -= frameCost(m)
	st.mu.Unlock()
	return nil
}

// awaitCredit waits until this end may send, or the stream cannot.
func (st *Stream) awaitCredit() error {
	for {
		st.mu.Lock()
		switch {
		case st.ended:
			st.mu.Unlock()
			return st.sendErr()
		case st.closedOut:
			st.mu.Unlock()
			return errSendClosed
		case st.credit > 0:
			st.mu.Unlock()
			return nil
		}
		st.mu.Unlock()
		select {
		case <-st.sendReady:
		case <-st.ctx.Done():
			st.abort(ctxStatus(st.ctx, "on the stream"))
		}
	}
}

var errSendClosed = NewStatus(CodeFailedPrecondition, "the stream's sending side is closed (CloseSend)", nil)

// sendErr is what Send returns once the stream has ended.
func (st *Stream) sendErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil {
		return io.EOF
	}
	return st.err
}

// Recv receives the next message into v, decoded with the stream's body
// codec; into a *[]byte it copies the bytes as they came. It waits until
// a message arrives or the stream ends: io.EOF when the other end closed
// its side (CloseSend, or a handler's clean return) and every message
// before was received; the status when the stream was reset or its
// context ended.
func (st *Stream) Recv(v any) error {
	st.recvMu.Lock()
	defer st.recvMu.Unlock()
	for {
		st.mu.Lock()
		if st.inHead < len(st.in) {
			m := st.in[st.inHead]
			st.in[st.inHead] = nil
			st.inHead++
			if st.inHead == len(st.in) {
				st.in, st.inHead = st.in[:0], 0
			}
			st.consumed += frameCost(m)
			var grant int64
			if st.consumed >= st.window/4 && !st.ended && !st.closedIn {
				grant, st.consumed = st.consumed, 0
				st.granted += grant
			}
			st.mu.Unlock()
			if grant > 0 {
				st.control(socket.TypeWindow, nil, binary.AppendUvarint(nil, uint64(grant)))
			}
			err := decodeInto(m, v)
			socket.ReleaseMessage(m)
			return err
		}
		switch {
		case st.ended && st.err != nil:
			err := st.err
			st.mu.Unlock()
			return err
		case st.ended || st.closedIn:
			st.mu.Unlock()
			return io.EOF
		}
		st.mu.Unlock()
		select {
		case <-st.recvReady:
		case <-st.ctx.Done():
			st.abort(ctxStatus(st.ctx, "on the stream"))
		}
	}
}

func decodeInto(m *socket.Message, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], m.Payload...)
		return nil
	}
	if err := m.UnmarshalBody(v); err != nil {
		return toStatus(err)
	}
	return nil
}

// CloseSend closes this end's sending side: the other end's Recv returns
// io.EOF once it has what was sent, with SetTrailer's meta as its
// Trailer. Receiving goes on. The stream ends once both sides are closed.
func (st *Stream) CloseSend() error {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return st.sendErr()
	}
	if st.closedOut {
		st.mu.Unlock()
		return nil
	}
	st.closedOut = true
	both := st.closedIn
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	m.Type, m.Seq = socket.TypeClose, st.id
	m.Meta.AddAll(&st.outTrailer)
	st.mu.Unlock()
	// In order after the DATA this end sent: it waits for room as they did.
	if err := st.cn.sock.WriteMessage(st.ctx, m); err != nil {
		se := status.From(err, CodeWriteFailed, "cannot close the stream's sending side")
		st.end(se, false)
		return se
	}
	if both {
		st.end(nil, false)
	}
	return nil
}

// Close ends the stream at once, both ways, unless it has ended already:
// the other end sees CodeCanceled. Messages not yet received are dropped.
func (st *Stream) Close() error {
	st.abort(NewStatus(CodeCanceled, "the stream was closed by the other end", nil))
	return nil
}

// Reset ends the stream at once, both ways, with err's status, which the
// other end's Send and Recv return (a nil err means CodeCanceled).
func (st *Stream) Reset(err error) error {
	se := toStatus(err)
	if se.OK() {
		se = NewStatus(CodeCanceled, "the stream was reset", nil)
	}
	st.abort(se)
	return nil
}

// abort ends the stream with why, and tells the other end.
func (st *Stream) abort(why *Status) { st.end(why, true) }

// end ends the stream, once: why nil means cleanly. With tell, the other
// end gets an END carrying why and the trailer. It wakes every waiter,
// ends the context, leaves the connection's table and runs the StreamDone
// hooks.
func (st *Stream) end(why *Status, tell bool) {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return
	}
	st.ended, st.err = true, why
	stop := st.stopCtx
	var dropped []*socket.Message
	if why != nil { // a reset drops what was not received
		dropped = st.in[st.inHead:]
		st.in, st.inHead = nil, 0
	}
	st.mu.Unlock()
	if stop != nil {
		stop() // it would find the stream ended
	}
	cause := error(why)
	if why == nil {
		cause = errStreamDone
	}
	st.cancel(cause) // before any waiter wakes: what it returns, the context says
	for _, m := range dropped {
		socket.ReleaseMessage(m)
	}
	signal(st.recvReady)
	signal(st.sendReady)
	if tell {
		st.mu.Lock()
		trailer := st.outTrailer
		st.mu.Unlock()
		st.control(socket.TypeEnd, why, nil, &trailer)
	}
	st.cn.streams.remove(st)
	for _, h := range st.plugins.streamDone {
		h.StreamDone(st)
	}
}

var errStreamDone = NewStatus(CodeCanceled, "the stream is done", nil)

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// StartTime is when the stream was opened or accepted; zero unless
// PeerConfig.CountTime (or an option implying it) is set.
func (st *Stream) StartTime() time.Time { return st.start }

// Route names the stream on this end, for labels: the service method it
// was opened to, or for an accepted stream the route that serves it ("" for
// the unknown handler).
func (st *Stream) Route() string { return st.route }

// streamTable holds a connection's open streams.
type streamTable struct {
	mu     sync.Mutex
	m      map[uint32]*Stream
	last   uint32  // the last id this end gave
	remote int     // streams the peer opened, open
	shut   *Status // set when the connection ended
}

// open gives st an even id no open stream has, and adds it; false once
// the connection ended.
//
// Each end numbers the streams it opens with even ids, and sends frames
// under its own id for the stream; the receiver flips the low bit, so the
// other end's streams are odd here, and neither end needs a role.
func (t *streamTable) open(st *Stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shut != nil {
		return false
	}
	if t.m == nil {
		t.m = map[uint32]*Stream{}
	}
	for {
		t.last += 2
		id := t.last
		if _, used := t.m[id]; !used && id != 0 {
			st.id = id
			t.m[id] = st
			return true
		}
	}
}

func (t *streamTable) get(id uint32) *Stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (t *streamTable) remove(st *Stream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[st.id] == st {
		delete(t.m, st.id)
		if !st.local {
			t.remote--
		}
	}
}

// shutAll ends the table: every open stream ends with why.
func (t *streamTable) shutAll(why *Status) {
	t.mu.Lock()
	t.shut = why
	open := make([]*Stream, 0, len(t.m))
	for _, st := range t.m {
		open = append(open, st)
	}
	t.mu.Unlock()
	for _, st := range open {
		st.end(why, false)
	}
}

// streamFrame handles a stream frame or a CANCEL read on cn, on the read
// goroutine: it never waits. An error ends the connection: the peer broke
// the protocol.
func (s *Session) streamFrame(cn *conn, m *socket.Message) error {
	if m.Type == socket.TypeOpen {
		return s.acceptStream(cn, m)
	}
	defer func() {
		if m != nil {
			socket.ReleaseMessage(m)
		}
	}()
	if m.Type == socket.TypeCancel {
		cn.running.cancel(m.Seq, m.Status)
		return nil
	}
	id := m.Seq ^ 1 // the sender's id for the stream, as this end numbers it
	st := cn.streams.get(id)
	if st == nil {
		return nil // a stream that ended here: what was in flight is dropped
	}
	switch m.Type {
	case socket.TypeData:
		st.mu.Lock()
		if st.received >= st.granted {
			granted := st.granted
			st.mu.Unlock()
			return NewStatus(CodeBadMessage, fmt.Sprintf("flow-control violation: stream %d got DATA past the %d bytes of credit it was granted", id, granted), nil)
		}
		st.received += frameCost(m)
		if st.ended || st.closedIn {
			st.mu.Unlock()
			return nil
		}
		st.in = append(st.in, m)
		m = nil // the stream holds it
		st.mu.Unlock()
		signal(st.recvReady)
	case socket.TypeWindow:
		n, k := binary.Uvarint(m.Payload)
		if k <= 0 || n > 1<<31 {
			return NewStatus(CodeBadMessage, fmt.Sprintf("stream %d: a malformed WINDOW frame", id), nil)
		}
		st.mu.Lock()
		st.credit += int64(n)
		over := st.credit > 1<<32
		st.mu.Unlock()
		if over {
			return NewStatus(CodeBadMessage, fmt.Sprintf("flow-control violation: stream %d was granted more than 4 GiB of credit", id), nil)
		}
		signal(st.sendReady)
	case socket.TypeClose:
		st.mu.Lock()
		st.closedIn = true
		st.trailer.Reset()
		st.trailer.AddAll(&m.Meta)
		both := st.closedOut
		st.mu.Unlock()
		signal(st.recvReady)
		if both {
			st.end(nil, false)
		}
	case socket.TypeEnd:
		st.mu.Lock()
		st.trailer.Reset()
		st.trailer.AddAll(&m.Meta)
		st.mu.Unlock()
		why := m.Status
		switch {
		case why.OK():
			why = nil
		case why.Code() == CodeCanceled || why.Code() == CodeTimeout:
			// The other end gave up: as for a canceled call, the cause
			// says context.Canceled.
			why = NewStatus(why.Code(), why.Msg(), context.Canceled)
		}
		st.end(why, false)
	}
	return nil
}

// acceptStream handles an OPEN: a stream the peer opens, served by a
// stream handler on a goroutine of its own.
func (s *Session) acceptStream(cn *conn, m *socket.Message) error {
	defer socket.ReleaseMessage(m)
	p := s.peer
	if m.Seq%2 != 0 || m.Seq == 0 {
		return NewStatus(CodeBadMessage, fmt.Sprintf("the peer opened stream %d: an opener's ids are even, and not 0", m.Seq), nil)
	}
	m.Seq ^= 1 // as this end numbers it
	str := newStream(s, cn, m, false)
	str.plugins = p.plugins
	parent, cancelParent := cn.ctx, context.CancelFunc(func() {})
	if d := m.Deadline; !d.IsZero() {
		parent, cancelParent = context.WithDeadline(cn.ctx, d)
	}
	str.ctx, str.cancel = context.WithCancelCause(parent)
	refuse := func(why *Status) {
		str.control(socket.TypeEnd, why, nil)
		str.cancel(why)
		cancelParent()
	}
	t := &cn.streams
	t.mu.Lock()
	switch {
	case t.shut != nil:
		t.mu.Unlock()
		refuse(t.shut)
		return nil
	case t.m[m.Seq] != nil:
		t.mu.Unlock()
		str.cancel(nil)
		cancelParent()
		return NewStatus(CodeBadMessage, fmt.Sprintf("the peer opened stream %d twice", m.Seq^1), nil)
	case t.remote >= p.cfg.MaxStreams:
		t.mu.Unlock()
		refuse(NewStatus(CodeOverloaded, fmt.Sprintf("this connection has %d streams open, its limit (PeerConfig.MaxStreams)", p.cfg.MaxStreams), nil))
		return nil
	}
	if t.m == nil {
		t.m = map[uint32]*Stream{}
	}
	t.m[m.Seq] = str
	t.remote++
	t.mu.Unlock()
	str.watchContext()

	h := p.router.table.lookupStream(m.ServiceMethod)
	if h == nil {
		str.end(p.router.table.notFoundStream(m.ServiceMethod), true)
		cancelParent()
		return nil
	}
	str.plugins, str.route = h.plugins, h.name
	str.grantRest()
	c := &streamCtx{str}
	if !p.spawn(func() {
		defer cancelParent()
		st := run(str.plugins.streamOpen, StreamOpenPlugin.StreamOpen, str)
		if st == nil {
			st = h.serveStream(c, str)
		}
		if st == nil && str.ctx.Err() != nil {
			// The handler returned because the stream's context ended (its
			// deadline, say): that is how the stream ends, not cleanly.
			st = ctxStatus(str.ctx, "on the stream")
		}
		str.end(st, true) // nothing if it ended already
	}) {
		str.end(errPeerClosing, true)
		cancelParent()
	}
	return nil
}

// serveStream runs a stream handler; a panic becomes CodeInternal.
func (h *Handler) serveStream(c StreamCtx, str *Stream) (st *Status) {
	defer func() {
		if r := recover(); r != nil {
			str.sess.peer.logger.Error("stream handler panicked", "service_method", clip(str.method), "panic", r)
			st = NewStatus(CodeInternal, "stream handler panicked", fmt.Errorf("%v", r))
		}
	}()
	return toStatus(h.stream(c, str))
}

// streamCtx is a stream handler's StreamCtx.
type streamCtx struct{ st *Stream }

func (c *streamCtx) Session() *Session          { return c.st.sess }
func (c *streamCtx) ServiceMethod() string      { return c.st.method }
func (c *streamCtx) Seq() uint32                { return c.st.id }
func (c *streamCtx) PeekMeta(key string) string { return c.st.header.Get(key) }
func (c *streamCtx) InputMeta() *Meta           { return &c.st.header }
func (c *streamCtx) Context() context.Context   { return c.st.ctx }
func (c *streamCtx) RealIP() string {
	return realIP(c.st.sess, c.st.cn, c.st.header.Get(RealIPKey))
}
