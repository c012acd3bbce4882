package tp

import (
	"context"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
)

// PushCtx is what a PUSH handler sees of its message and session.
type PushCtx interface {
	// Session is the session the message came on; a handler may call or
	// push back on it.
	Session() *Session
	// ServiceMethod is the route the message was sent to.
	ServiceMethod() string
	// Seq is the message's sequence number.
	Seq() uint32
	// PeekMeta returns the first value of key in the message's meta.
	PeekMeta(key string) string
	// InputMeta is the message's meta. Read it only; it is valid until the
	// handler returns.
	InputMeta() *Meta
	// RealIP is the caller's IP: the X-Real-IP meta if a trusted proxy
	// (PeerConfig.TrustedProxies) set it, else the remote address's host.
	RealIP() string
	// Context ends when the caller's deadline or the context age passes,
	// or the session closes.
	Context() context.Context
}

// CallCtx is what a CALL handler sees: PushCtx, plus control of the reply.
type CallCtx interface {
	PushCtx
	// SetMeta sets a meta pair on the reply, replacing earlier values.
	SetMeta(key, value string)
	// AddMeta adds a meta pair to the reply.
	AddMeta(key, value string)
	// SetBodyCodec sets the reply's body codec; by default it is the
	// request's.
	SetBodyCodec(id byte)
}

// UnknownPushCtx is what the unknown-push handler sees: the body is not
// decoded, since no route said into what.
type UnknownPushCtx interface {
	PushCtx
	// InputBodyCodec is the codec id of the body.
	InputBodyCodec() byte
	// InputBody is the encoded body, valid until the handler returns.
	InputBody() []byte
	// Bind decodes the body into v.
	Bind(v any) error
}

// UnknownCallCtx is what the unknown-call handler sees.
type UnknownCallCtx interface {
	CallCtx
	InputBodyCodec() byte
	InputBody() []byte
	Bind(v any) error
}

// RealIPKey is the meta key a proxy sets to pass on the original caller's IP.
const RealIPKey = "X-Real-IP"

// AcceptCodecKey is the meta key of a CALL that asks for its reply in
// another body codec than its own: the codec's name ("json", "protobuf").
// A name no codec has is ignored; the handler's SetBodyCodec still rules.
const AcceptCodecKey = "Accept-Body-Codec"

// A FrontConn is a connection from a front end in this process (the HTTP
// front, say) that carries the messages of many callers: the peer takes
// the X-Real-IP meta of a message on it as its caller's IP, as it does
// from TrustedProxies. Only code in the process can make one.
type FrontConn interface {
	net.Conn
	FrontEnd()
}

// handlerCtx serves one CALL or PUSH, from the read goroutine to the
// handler's end. It is made for one message and never reused: a
// goroutine the handler started may keep it, and find it still pointing
// at its own caller. Its methods are safe for concurrent use by the
// handler's goroutines; once the handler has returned, what belonged to
// the message is gone (the meta reads empty, the reply is sent, Context
// has ended), and what user code took a pointer to (InputMeta, InputBody)
// is left to the garbage collector rather than recycled.
type handlerCtx struct {
	sess    *Session
	conn    *conn  // the connection the message came on, and its reply goes out on
	method  string // the message's, as read
	seq     uint32
	handler *Handler
	arg     reflect.Value
	start   time.Time // when the message was read, if a setting needs it

	mu       sync.Mutex
	input    *socket.Message // nil once the handler has returned
	output   *socket.Message // the reply; nil for a PUSH, and once writing began
	sent     *socket.Message // the reply being written, for the write hooks
	escaped  bool            // user code holds a pointer into input
	ctx      context.Context // built on first use
	cancel   context.CancelCauseFunc
	canceled *Status // the caller stopped waiting, and said so (a CANCEL)

	// c as the interfaces handlers receive, so the reflect path can take
	// their address rather than box a copy per message.
	asCall CallCtx
	asPush PushCtx
}

var (
	_ CallCtx        = (*handlerCtx)(nil)
	_ UnknownCallCtx = (*handlerCtx)(nil)
	_ UnknownPushCtx = (*handlerCtx)(nil)
	_ ReadCtx        = (*handlerCtx)(nil)
	_ WriteCtx       = (*handlerCtx)(nil)
)

func newHandlerCtx(s *Session, cn *conn, in *socket.Message) *handlerCtx {
	c := new(handlerCtx)
	c.init(s, cn, in)
	return c
}

func (c *handlerCtx) init(s *Session, cn *conn, in *socket.Message) {
	c.sess, c.conn, c.input, c.method, c.seq = s, cn, in, in.ServiceMethod, in.Seq
	c.asCall, c.asPush = c, c
}

// withArg is a handler context and its argument in one allocation, for
// routes whose argument type is known at compile time (HandleCall,
// HandlePush).
type withArg[Arg any] struct {
	c   handlerCtx
	arg Arg
}

// allocWithArg makes a handler context whose argument is allocated with it.
func allocWithArg[Arg any]() *handlerCtx {
	b := new(withArg[Arg])
	b.c.arg = reflect.ValueOf(&b.arg)
	return &b.c
}

// value returns the ctx as a reflect.Value of CallCtx or PushCtx.
func (c *handlerCtx) value(isCall bool) reflect.Value {
	if isCall {
		return reflect.ValueOf(&c.asCall).Elem()
	}
	return reflect.ValueOf(&c.asPush).Elem()
}

// release ends the message's life: its context ends, and its messages go
// back to the pool unless user code may still read them.
func (c *handlerCtx) release() {
	c.mu.Lock()
	in, out, escaped, cancel := c.input, c.output, c.escaped, c.cancel
	c.input, c.output, c.sent, c.cancel = nil, nil, nil, nil
	if c.ctx == nil {
		c.ctx = endedCtx
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel(errHandlerReturned)
	}
	if in != nil && !escaped {
		socket.ReleaseMessage(in)
	}
	if out != nil {
		socket.ReleaseMessage(out)
	}
}

// endedCtx is the Context of a handler asked for it only after it returned.
var endedCtx = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errHandlerReturned)
	return ctx
}()

var errHandlerReturned = NewStatus(CodeCanceled, "the handler has returned", nil)

// in returns the input message while the handler runs, or nil.
func (c *handlerCtx) in() *socket.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.input
}

func (c *handlerCtx) Session() *Session     { return c.sess }
func (c *handlerCtx) ServiceMethod() string { return c.method }
func (c *handlerCtx) Seq() uint32           { return c.seq }
func (c *handlerCtx) StartTime() time.Time  { return c.start }

// Route is the route that serves the message, "" for the unknown handler.
func (c *handlerCtx) Route() string {
	if c.handler == nil {
		return ""
	}
	return c.handler.name
}

func (c *handlerCtx) PeekMeta(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input == nil {
		return ""
	}
	return c.input.Meta.Get(key)
}

// InputMeta is the message's meta; empty once the handler has returned.
func (c *handlerCtx) InputMeta() *Meta {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input == nil {
		return new(socket.Meta)
	}
	c.escaped = true
	return &c.input.Meta
}

func (c *handlerCtx) Input() *Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input != nil {
		c.escaped = true
	}
	return c.input
}

func (c *handlerCtx) Output() *Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.output != nil {
		return c.output
	}
	return c.sent
}

func (c *handlerCtx) InputBodyCodec() byte {
	if in := c.in(); in != nil {
		return in.BodyCodec
	}
	return 0
}

// InputBody is the encoded body; nil once the handler has returned.
func (c *handlerCtx) InputBody() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input == nil {
		return nil
	}
	c.escaped = true
	return c.input.Payload
}

func (c *handlerCtx) SetContext(ctx context.Context) {
	c.Context() // so its cancel, if any, is kept for release
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
}

func (c *handlerCtx) Body() any {
	if !c.arg.IsValid() {
		return nil
	}
	return c.arg.Interface()
}

func (c *handlerCtx) RealIP() string { return realIP(c.sess, c.conn, c.PeekMeta(RealIPKey)) }

// realIP is the caller's IP: claimed, from a trusted proxy, or the remote
// address's host.
func realIP(s *Session, cn *conn, claimed string) string {
	addr := cn.sock.RemoteAddr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if _, front := cn.sock.Conn().(FrontConn); claimed != "" && (front || s.peer.trusted(host)) {
		return claimed
	}
	return host
}

func (c *handlerCtx) SetMeta(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.output != nil {
		c.output.Meta.Set(key, value)
	}
}

func (c *handlerCtx) AddMeta(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.output != nil {
		c.output.Meta.Add(key, value)
	}
}

func (c *handlerCtx) SetBodyCodec(id byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.output != nil {
		c.output.BodyCodec = id
	}
}

func (c *handlerCtx) Bind(v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input == nil {
		return errHandlerReturned
	}
	if err := c.input.UnmarshalBody(v); err != nil {
		return toStatus(err)
	}
	return nil
}

// Context is built on first use, so handlers that never ask pay nothing.
// It ends with the caller's deadline, the context age (counted from when
// the message was read), the connection the message came on, or the
// handler's return.
func (c *handlerCtx) Context() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.newContext()
	}
	return c.ctx
}

// newContext builds the handler's context. Called with mu held.
func (c *handlerCtx) newContext() {
	base, cancel := context.WithCancelCause(c.conn.ctx)
	c.ctx, c.cancel = base, cancel
	if d := c.deadline(); !d.IsZero() {
		ctx, stop := context.WithDeadline(base, d)
		c.ctx = ctx
		c.cancel = func(cause error) {
			cancel(cause)
			stop()
		}
	}
	if c.canceled != nil {
		c.cancel(c.canceled)
	}
}

// cancelByCaller ends the handler's context: the caller stopped waiting,
// for the reason why. The reply is not sent.
func (c *handlerCtx) cancelByCaller(why *Status) {
	code, msg := CodeCanceled, "the caller stopped waiting"
	if why != nil {
		code, msg = why.Code(), msg+": "+clip(why.Msg())
	}
	c.mu.Lock()
	if c.input == nil || c.canceled != nil { // returned, or canceled already
		c.mu.Unlock()
		return
	}
	c.canceled = NewStatus(code, msg, context.Canceled)
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel(c.canceled)
	}
}

// runningCalls holds a connection's CALLs in handlers, by seq, for the
// CANCELs that end them.
type runningCalls struct {
	mu sync.Mutex
	m  map[uint32]*handlerCtx
}

func (r *runningCalls) add(c *handlerCtx) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[uint32]*handlerCtx{}
	}
	r.m[c.seq] = c
	r.mu.Unlock()
}

func (r *runningCalls) remove(c *handlerCtx) {
	r.mu.Lock()
	if r.m[c.seq] == c {
		delete(r.m, c.seq)
	}
	r.mu.Unlock()
}

func (r *runningCalls) cancel(seq uint32, why *Status) {
	r.mu.Lock()
	c := r.m[seq]
	r.mu.Unlock()
	if c != nil {
		c.cancelByCaller(why)
	}
}

// deadline is the caller's deadline, or the context age's if earlier.
// Called with mu held, while the handler runs.
func (c *handlerCtx) deadline() time.Time {
	d := c.input.Deadline
	if age := c.sess.peer.cfg.ContextAge; age > 0 {
		if byAge := c.start.Add(age); d.IsZero() || byAge.Before(d) {
			d = byAge
		}
	}
	return d
}
