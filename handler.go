package tp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// dispatch takes a CALL or PUSH read on cn off the read goroutine: it
// runs the header hooks, finds the route and queues the rest for the
// handler pool (see runQueue). Decoding the body happens on the pool, so
// the read loop stays free. An error means the connection must end: the
// peer does not read what it is sent.
func (p *Peer) dispatch(s *Session, cn *conn, m *socket.Message) error {
	isCall := m.Type == socket.TypeCall
	st := cn.open(m, false)
	if st == ErrDiscard {
		socket.ReleaseMessage(m)
		return nil
	}
	// Without header hooks, which may rename the route, the route is
	// known now: a typed one allocates the context with its argument.
	hooked := isCall && len(p.plugins.postReadCallHeader) > 0 || !isCall && len(p.plugins.postReadPushHeader) > 0
	var h *Handler
	if st == nil && !hooked {
		h = p.router.table.lookup(isCall, m.ServiceMethod)
	}
	var c *handlerCtx
	if h != nil && h.alloc != nil {
		c = h.alloc()
	} else {
		c = new(handlerCtx)
	}
	c.init(s, cn, m)
	if p.cfg.countTime || p.cfg.ContextAge > 0 {
		c.start = time.Now()
	}
	if isCall {
		out := socket.AcquireMessage()
		out.Type, out.Seq, out.ServiceMethod = socket.TypeReply, m.Seq, m.ServiceMethod
		out.BodyCodec = m.BodyCodec // reply in the caller's codec
		if out.BodyCodec == 0 {
			out.BodyCodec = p.cfg.BodyCodec
		}
		if name := m.Meta.Get(AcceptCodecKey); name != "" {
			if c, err := codec.ByName(name); err == nil {
				out.BodyCodec = c.ID()
			}
		}
		out.XferPipe = append(out.XferPipe, m.XferPipe...)
		c.output = out
	}
	switch {
	case st != nil || !hooked:
	case isCall:
		st = run(p.plugins.postReadCallHeader, PostReadCallHeaderPlugin.PostReadCallHeader, ReadCtx(c))
	default:
		st = run(p.plugins.postReadPushHeader, PostReadPushHeaderPlugin.PostReadPushHeader, ReadCtx(c))
	}
	c.method = m.ServiceMethod // the header hooks may rewrite it
	if c.output != nil {
		c.output.ServiceMethod = c.method // the reply names the route that serves it
	}
	if st == nil {
		if hooked {
			h = p.router.table.lookup(isCall, m.ServiceMethod)
		}
		if c.handler = h; h == nil {
			st = p.router.table.notFound(isCall, m.ServiceMethod)
		}
	}
	if st == nil && cn.serving.Load() >= int64(p.cfg.MaxSessionHandlers) {
		st = NewStatus(CodeOverloaded, fmt.Sprintf("this session has %d messages in handlers, its limit (PeerConfig.MaxSessionHandlers); read the replies, or send less at once", p.cfg.MaxSessionHandlers), nil)
	}
	if st == nil && !p.inflight.enter() {
		st = errPeerClosing
	}
	if st == nil {
		n := cn.serving.Add(1)
		if isCall {
			cn.running.add(c)
		}
		// A quiet peer: nothing else in a handler, nothing more read on cn.
		if n == 1 && p.inflight.running() == 1 && cn.sock.Buffered() == 0 && p.queue.tryInline() {
			cn.inlineNext = c // the read goroutine runs it
			return nil
		}
		if p.queue.push(c) {
			return nil
		}
		if isCall {
			cn.running.remove(c)
		}
		cn.serving.Add(-1)
		p.inflight.leave()
		st = p.poolFull()
	}
	return c.refuse(st)
}

// refuse answers a message no handler will serve: a CALL gets st as its
// reply, queued since the read goroutine may be the caller; a PUSH is
// dropped. It releases c. An error means the peer reads nothing.
func (c *handlerCtx) refuse(st *Status) error {
	var err error
	if c.output != nil {
		err = c.writeReply(st, true)
	} else {
		c.sess.peer.droppedPush(c, st)
	}
	c.release()
	return err
}

// poolFull is the status of a message refused because every handler
// goroutine the pool allows is busy.
func (p *Peer) poolFull() *Status {
	return NewStatus(CodeOverloaded, fmt.Sprintf("all %d handlers are busy; retry later", p.cfg.PoolSize), nil)
}

// run serves one message on a handler goroutine.
func (c *handlerCtx) run() {
	p := c.sess.peer
	st := c.invoke()
	if c.output != nil {
		c.conn.running.remove(c)
		c.writeReply(st, false)
	} else if st != nil {
		c.sess.warnLimited("push handler failed", "service_method", clip(c.method), "session", clip(c.sess.ID()), "status", clip(st.Error()))
	}
	c.release()
	c.conn.serving.Add(-1)
	c.sess.leaveIfDone(c.conn)
	p.inflight.leave()
}

// invoke decodes the argument and calls the handler. A panic becomes an
// internal-error status, so one bad handler cannot take the peer down.
func (c *handlerCtx) invoke() (st *Status) {
	defer func() {
		if r := recover(); r != nil {
			c.sess.peer.logger.Error("handler panicked", "service_method", c.method, "panic", r, "stack", string(debug.Stack()))
			st = NewStatus(CodeInternal, "handler panicked", fmt.Errorf("%v", r))
		}
	}()
	h := c.handler
	if st = c.bodyHooks(true); st != nil {
		return st
	}
	if h.argType != nil {
		if in := c.input; len(in.Payload) > 0 && bytes.IndexByte(h.codecs, in.BodyCodec) < 0 {
			return NewStatus(CodeUnsupported, fmt.Sprintf("%s takes bodies in %s, not %s (tp.Codecs names more)", clip(c.method), codecNames(h.codecs), codecName(in.BodyCodec)), nil)
		}
		if !c.arg.IsValid() { // else allocated with the context
			c.arg = reflect.New(h.argType)
		}
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
	if st.OK() {
		c.mu.Lock()
		if c.output != nil {
			c.output.Body = body
		}
		c.mu.Unlock()
	}
	return st
}

// writeReply sends the reply, or st in its place, on the connection the
// call came on: a reply goes nowhere else. queue is for the read
// goroutine, which must not wait; a handler's reply waits for room until
// the caller stops waiting (its deadline, or the connection's end). The
// reply leaves c: a handler's goroutine that sets meta after this finds
// nothing to set. An error means the peer reads nothing.
func (c *handlerCtx) writeReply(st *Status, queue bool) error {
	p := c.sess.peer
	// The reply leaves the handler's reach (SetMeta from its goroutines
	// now does nothing) and becomes what write hooks see (Output).
	c.mu.Lock()
	m := c.output
	c.output, c.sent = nil, m
	bounded := !queue && (c.ctx != nil || (c.input != nil && !c.input.Deadline.IsZero()))
	canceled := c.canceled != nil
	c.mu.Unlock()
	defer socket.ReleaseMessage(m)
	if canceled {
		return nil // the caller stopped waiting, and said so: nobody reads it
	}
	// A reply waits for room until the caller stops waiting (its deadline,
	// which the handler's context carries, as it does the connection's
	// end); without a deadline or a context, as long as the connection
	// lasts, whose close ends it.
	ctx := context.Background()
	if bounded {
		ctx = c.Context()
	}
	hp := p.plugins
	if c.handler != nil {
		hp = c.handler.plugins
	}
	if st != nil {
		m.Status, m.Body = st, nil
	}
	// Every reply passes the hooks, an error too: plugin/secure seals both.
	if st := run(hp.preWriteReply, PreWriteReplyPlugin.PreWriteReply, WriteCtx(c)); st != nil {
		m.Status, m.Body, m.Payload = st, nil, nil
	}
	if st := c.conn.seal(m, false); st != nil {
		// Seal the failure instead, or send it as it is.
		m.Status, m.Body, m.Payload = st, nil, nil
		c.conn.seal(m, false)
	}
	sock := c.conn.sock
	write := func() error {
		if queue {
			return sock.QueueMessage(m)
		}
		return sock.WriteMessage(ctx, m)
	}
	err := write()
	if err != nil && m.Body != nil {
		// The result would not encode: tell the caller rather than leave it
		// waiting.
		var se *Status
		if errors.As(err, &se) && (se.Code() == CodeInvalidArgument || se.Code() == CodeUnsupported) {
			m.Status, m.Body = NewStatus(CodeInternal, "cannot encode the reply", err), nil
			err = write()
		}
	}
	if err != nil {
		p.logger.Debug("cannot write a reply", "service_method", clip(m.ServiceMethod), "seq", m.Seq, "session", clip(c.sess.ID()), "err", err)
		if queue && status.From(err, 0, "").Code() == CodeWriteFailed {
			return err
		}
		return nil
	}
	if !c.start.IsZero() {
		cost := time.Since(c.start)
		if t := p.cfg.SlowCallThreshold; t > 0 && cost > t {
			c.sess.warnLimited("slow handler", "service_method", clip(m.ServiceMethod), "seq", m.Seq, "cost", cost, "session", clip(c.sess.ID()))
		}
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", c.sess, m, m.Body)
	}
	if st := run(hp.postWriteReply, PostWriteReplyPlugin.PostWriteReply, WriteCtx(c)); st != nil {
		c.sess.warnLimited("PostWriteReply hook failed after the reply was sent", "service_method", clip(m.ServiceMethod), "status", clip(st.Error()))
	}
	return nil
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

// droppedPush counts a PUSH no handler took and logs it: a WARN at most
// once a second (with how many were dropped since), the rest at DEBUG.
// The sender cannot know; the count is Peer.DroppedPushes.
func (p *Peer) droppedPush(c *handlerCtx, st *Status) {
	n := p.dropped.Add(1)
	c.sess.warnLimited("dropped a push no handler takes", "service_method", clip(c.method), "session", clip(c.sess.ID()),
		"status", clip(st.Error()), "dropped_total", n)
}

// warnLimited logs what a peer can provoke at will (a bad push, a failing
// handler): a WARN at most once a second for each session, saying how many
// lines it held back since, and the rest at DEBUG, so one noisy peer
// neither floods the logs nor hides the others. Callers clip the peer's
// text (clip), so no line grows with what the peer sent.
func (s *Session) warnLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last >= int64(time.Second) && s.lastWarn.CompareAndSwap(last, now) {
		s.peer.logger.Warn(msg, append(args, "held_back", s.heldBack.Swap(0))...)
		return
	}
	s.heldBack.Add(1)
	s.peer.logger.Debug(msg, args...)
}

// codecNames names codec ids for an error.
func codecNames(ids []byte) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = codecName(id)
	}
	return strings.Join(names, ", ")
}

func codecName(id byte) string {
	if c, err := codec.ByID(id); err == nil {
		return c.Name()
	}
	return fmt.Sprintf("codec %d", id)
}

// clip cuts text a peer chose (a service method, a status) for a log line.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return s[:max] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// DroppedPushes returns how many PUSHes the peer has dropped: no route, a
// refusing hook, a full pool or a closing peer.
func (p *Peer) DroppedPushes() uint64 { return p.dropped.Load() }

// bodyText is a body as PrintDetail logs it: the value, not its address,
// cut to maxBodyText bytes.
func bodyText(body any) string {
	v := reflect.ValueOf(body)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	var s string
	if v.IsValid() && v.CanInterface() {
		s = fmt.Sprintf("%+v", v.Interface())
	} else {
		s = fmt.Sprintf("%+v", body)
	}
	if len(s) > maxBodyText {
		s = s[:maxBodyText] + "…"
	}
	return s
}

const maxBodyText = 256

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
		attrs = append(attrs, slog.String("body", bodyText(body)))
	}
	p.logger.LogAttrs(s.ctx, slog.LevelInfo, "message", attrs...)
}
