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
	InputMeta() *socket.Meta
	// RealIP is the caller's IP: the X-Real-IP meta if a proxy set it,
	// else the remote address's host.
	RealIP() string
	// Swap is the session's key/value store.
	Swap() *sync.Map
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
	Bind(v any) *Status
}

// UnknownCallCtx is what the unknown-call handler sees.
type UnknownCallCtx interface {
	CallCtx
	InputBodyCodec() byte
	InputBody() []byte
	Bind(v any) *Status
}

// RealIPKey is the meta key a proxy sets to pass on the original caller's IP.
const RealIPKey = "X-Real-IP"

// handlerCtx serves one CALL or PUSH, from the read goroutine to the
// handler's end. It is pooled: nothing may keep it after release.
type handlerCtx struct {
	sess    *Session
	input   *socket.Message
	output  *socket.Message // the reply; nil for a PUSH
	handler *Handler
	arg     reflect.Value
	start   time.Time
	ctx     context.Context // built on first use
	cancel  context.CancelFunc

	// The ctx as the interfaces handlers receive, made once per pooled
	// value: converting per call would re-check the interface every time.
	asCall               CallCtx
	asPush               PushCtx
	callValue, pushValue reflect.Value
}

var (
	_ CallCtx        = (*handlerCtx)(nil)
	_ UnknownCallCtx = (*handlerCtx)(nil)
	_ UnknownPushCtx = (*handlerCtx)(nil)
	_ ReadCtx        = (*handlerCtx)(nil)
	_ WriteCtx       = (*handlerCtx)(nil)
)

var handlerCtxPool = sync.Pool{New: func() any {
	c := new(handlerCtx)
	c.asCall, c.asPush = c, c
	c.callValue, c.pushValue = reflect.ValueOf(&c.asCall).Elem(), reflect.ValueOf(&c.asPush).Elem()
	return c
}}

func acquireHandlerCtx(s *Session, in *socket.Message) *handlerCtx {
	c := handlerCtxPool.Get().(*handlerCtx)
	c.sess, c.input = s, in
	return c
}

// value returns the ctx as a reflect.Value of CallCtx or PushCtx.
func (c *handlerCtx) value(isCall bool) reflect.Value {
	if isCall {
		return c.callValue
	}
	return c.pushValue
}

func (c *handlerCtx) release() {
	if c.cancel != nil {
		c.cancel()
	}
	if c.input != nil {
		socket.ReleaseMessage(c.input)
	}
	if c.output != nil {
		socket.ReleaseMessage(c.output)
	}
	*c = handlerCtx{asCall: c.asCall, asPush: c.asPush, callValue: c.callValue, pushValue: c.pushValue}
	handlerCtxPool.Put(c)
}

func (c *handlerCtx) Session() *Session          { return c.sess }
func (c *handlerCtx) ServiceMethod() string      { return c.input.ServiceMethod }
func (c *handlerCtx) Seq() uint32                { return c.input.Seq }
func (c *handlerCtx) PeekMeta(key string) string { return c.input.Meta.Get(key) }
func (c *handlerCtx) InputMeta() *socket.Meta    { return &c.input.Meta }
func (c *handlerCtx) Swap() *sync.Map            { return c.sess.Swap() }
func (c *handlerCtx) Input() *socket.Message     { return c.input }
func (c *handlerCtx) Output() *socket.Message    { return c.output }
func (c *handlerCtx) InputBodyCodec() byte       { return c.input.BodyCodec }
func (c *handlerCtx) InputBody() []byte          { return c.input.Payload }

func (c *handlerCtx) StartTime() time.Time { return c.start }

func (c *handlerCtx) SetContext(ctx context.Context) {
	c.Context() // so its cancel, if any, is kept for release
	c.ctx = ctx
}

func (c *handlerCtx) Body() any {
	if !c.arg.IsValid() {
		return nil
	}
	return c.arg.Interface()
}

func (c *handlerCtx) RealIP() string {
	if ip := c.input.Meta.Get(RealIPKey); ip != "" {
		return ip
	}
	addr := c.sess.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

func (c *handlerCtx) SetMeta(key, value string) {
	if c.output != nil {
		c.output.Meta.Set(key, value)
	}
}

func (c *handlerCtx) AddMeta(key, value string) {
	if c.output != nil {
		c.output.Meta.Add(key, value)
	}
}

func (c *handlerCtx) SetBodyCodec(id byte) {
	if c.output != nil {
		c.output.BodyCodec = id
	}
}

func (c *handlerCtx) Bind(v any) *Status {
	if err := c.input.UnmarshalBody(v); err != nil {
		return toStatus(err)
	}
	return nil
}

// Context is built on first use, so handlers that never ask pay nothing.
func (c *handlerCtx) Context() context.Context {
	if c.ctx == nil {
		d := c.deadline()
		if d.IsZero() {
			c.ctx = c.sess.ctx
		} else {
			c.ctx, c.cancel = context.WithDeadline(c.sess.ctx, d)
		}
	}
	return c.ctx
}

// deadline is the caller's deadline, or the context age's if earlier.
func (c *handlerCtx) deadline() time.Time {
	d := c.input.Deadline
	if age := c.sess.peer.cfg.ContextAge; age > 0 {
		if byAge := time.Now().Add(age); d.IsZero() || byAge.Before(d) {
			d = byAge
		}
	}
	return d
}
