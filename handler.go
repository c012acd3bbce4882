package tp

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
)

// dispatch takes a CALL or PUSH off the read goroutine: it runs the header
// hooks, finds the route and queues the rest for the handler pool (see
// runQueue). Decoding the body happens on the pool, so the read loop stays
// free.
func (p *Peer) dispatch(s *Session, m *socket.Message) {
	c := acquireHandlerCtx(s, m)
	if p.cfg.countTime {
		c.start = time.Now()
	}
	isCall := m.Type == socket.TypeCall
	var st *Status
	if isCall {
		out := socket.AcquireMessage()
		out.Type, out.Seq, out.ServiceMethod = socket.TypeReply, m.Seq, m.ServiceMethod
		out.BodyCodec = m.BodyCodec // reply in the caller's codec
		if out.BodyCodec == 0 {
			out.BodyCodec = p.cfg.bodyCodec
		}
		out.XferPipe = append(out.XferPipe, m.XferPipe...)
		c.output = out
		st = run(p.plugins.postReadCallHeader, PostReadCallHeaderPlugin.PostReadCallHeader, ReadCtx(c))
	} else {
		st = run(p.plugins.postReadPushHeader, PostReadPushHeaderPlugin.PostReadPushHeader, ReadCtx(c))
	}
	if st == nil {
		// After the header hooks, which may rewrite the service method.
		if c.handler = p.router.table.lookup(isCall, m.ServiceMethod); c.handler == nil {
			st = NewStatus(CodeNotFound, fmt.Sprintf("no %s handler for %q", kind(isCall), m.ServiceMethod), nil)
		}
	}
	if st == nil && !p.inflight.enter() {
		st = errPeerClosing
	}
	if st == nil {
		if p.queue.push(c) {
			return
		}
		p.inflight.leave()
		st = p.poolFull()
	}
	c.refuse(st)
}

// refuse answers a message no handler will serve: a CALL gets st as its
// reply, a PUSH is dropped. It releases c.
func (c *handlerCtx) refuse(st *Status) {
	if c.output != nil {
		c.writeReply(st)
	} else {
		c.sess.peer.logger.Debug("dropped a push", "service_method", c.input.ServiceMethod, "session", c.sess.ID(), "status", st)
	}
	c.release()
}

// poolFull is the status of a message refused because every handler
// goroutine the pool allows is busy.
func (p *Peer) poolFull() *Status {
	return NewStatus(CodeOverloaded, fmt.Sprintf("all %d handlers are busy; retry later", p.cfg.PoolSize), nil)
}

// run serves one message on a handler goroutine.
func (c *handlerCtx) run() {
	p := c.sess.peer
	defer p.inflight.leave()
	defer c.release()
	st := c.invoke()
	if c.output != nil {
		c.writeReply(st)
	} else if st != nil {
		p.logger.Warn("push handler failed", "service_method", c.input.ServiceMethod, "session", c.sess.ID(), "status", st)
	}
}

// invoke decodes the argument and calls the handler. A panic becomes an
// internal-error status, so one bad handler cannot take the peer down.
func (c *handlerCtx) invoke() (st *Status) {
	defer func() {
		if r := recover(); r != nil {
			c.sess.peer.logger.Error("handler panicked", "service_method", c.input.ServiceMethod, "panic", r, "stack", string(debug.Stack()))
			st = NewStatus(CodeInternal, "handler panicked", fmt.Errorf("%v", r))
		}
	}()
	h := c.handler
	if st = c.bodyHooks(true); st != nil {
		return st
	}
	if h.argType != nil {
		c.arg = reflect.New(h.argType)
		if err := c.input.UnmarshalBody(c.arg.Interface()); err != nil {
			return toStatus(err)
		}
	}
	if st = c.bodyHooks(false); st != nil {
		return st
	}
	if p := c.sess.peer; p.cfg.PrintDetail {
		p.logMessage("recv", c.sess, c.input, c.Body())
	}
	body, st := h.invoke(c, c.arg)
	if c.output != nil && st.OK() {
		c.output.Body = body
	}
	return st
}

// writeReply sends the reply, or st in its place.
func (c *handlerCtx) writeReply(st *Status) {
	p, m := c.sess.peer, c.output
	hp := p.plugins
	if c.handler != nil {
		hp = c.handler.plugins
	}
	if st == nil {
		st = run(hp.preWriteReply, PreWriteReplyPlugin.PreWriteReply, WriteCtx(c))
	}
	if st != nil {
		m.Status, m.Body = st, nil
	}
	sock := c.sess.sock.Load()
	err := sock.WriteMessage(m)
	if err != nil && m.Body != nil && !errors.Is(err, errSessionClosed) {
		// The result would not encode: tell the caller rather than leave it
		// waiting.
		var se *Status
		if errors.As(err, &se) && (se.Code() == CodeInvalidArgument || se.Code() == CodeUnsupported) {
			m.Status, m.Body = NewStatus(CodeInternal, "cannot encode the reply", err), nil
			err = sock.WriteMessage(m)
		}
	}
	if err != nil {
		p.logger.Debug("cannot write a reply", "service_method", m.ServiceMethod, "seq", m.Seq, "session", c.sess.ID(), "err", err)
		return
	}
	if !c.start.IsZero() {
		cost := time.Since(c.start)
		if t := p.cfg.SlowCallThreshold; t > 0 && cost > t {
			p.logger.Warn("slow handler", "service_method", m.ServiceMethod, "seq", m.Seq, "cost", cost, "session", c.sess.ID())
		}
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", c.sess, m, m.Body)
	}
	if st := run(hp.postWriteReply, PostWriteReplyPlugin.PostWriteReply, WriteCtx(c)); st != nil {
		p.logger.Warn("PostWriteReply hook failed after the reply was sent", "service_method", m.ServiceMethod, "status", st)
	}
}

// bodyHooks runs the route's hooks before (pre) or after decoding the body.
func (c *handlerCtx) bodyHooks(pre bool) *Status {
	hp := c.handler.plugins
	switch {
	case c.output != nil && pre:
		return run(hp.preReadCallBody, PreReadCallBodyPlugin.PreReadCallBody, ReadCtx(c))
	case c.output != nil:
		return run(hp.postReadCallBody, PostReadCallBodyPlugin.PostReadCallBody, ReadCtx(c))
	case pre:
		return run(hp.preReadPushBody, PreReadPushBodyPlugin.PreReadPushBody, ReadCtx(c))
	default:
		return run(hp.postReadPushBody, PostReadPushBodyPlugin.PostReadPushBody, ReadCtx(c))
	}
}

// isTemporary reports accept errors worth retrying: the process or system
// ran out of descriptors, or a connection was aborted before accept.
func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// logMessage writes the PrintDetail line of one message.
func (p *Peer) logMessage(dir string, s *Session, m *socket.Message, body any) {
	attrs := []slog.Attr{
		slog.String("dir", dir),
		slog.String("type", m.Type.String()),
		slog.String("service_method", m.ServiceMethod),
		slog.Uint64("seq", uint64(m.Seq)),
		slog.Int("size", m.Size),
		slog.String("session", s.ID()),
	}
	if !m.Status.OK() {
		attrs = append(attrs, slog.String("status", m.Status.Error()))
	}
	if m.Meta.Len() > 0 {
		var kv []any
		m.Meta.Range(func(k, v string) bool {
			kv = append(kv, slog.String(k, v))
			return true
		})
		attrs = append(attrs, slog.Group("meta", kv...))
	}
	if body != nil {
		attrs = append(attrs, slog.Any("body", body))
	}
	p.logger.LogAttrs(s.ctx, slog.LevelInfo, "message", attrs...)
}
