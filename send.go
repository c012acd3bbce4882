package tp

import (
	"context"
	"fmt"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// MessageSetting adjusts a message before it is sent.
type MessageSetting func(*socket.Message)

// WithSetMeta sets a meta pair, replacing earlier values of key.
func WithSetMeta(key, value string) MessageSetting {
	return func(m *socket.Message) { m.Meta.Set(key, value) }
}

// WithAddMeta adds a meta pair.
func WithAddMeta(key, value string) MessageSetting {
	return func(m *socket.Message) { m.Meta.Add(key, value) }
}

// WithBodyCodec sets the body codec by id, such as codec.ProtobufID.
func WithBodyCodec(id byte) MessageSetting {
	return func(m *socket.Message) { m.BodyCodec = id }
}

// WithXferPipe runs the packed message through the filters with these ids,
// such as gzip.ID.
func WithXferPipe(ids ...byte) MessageSetting {
	return func(m *socket.Message) { m.XferPipe.Append(ids...) }
}

// WithContextAge bounds the call (and the remote handler's context) to d
// from now, if that is sooner than the context's deadline.
func WithContextAge(d time.Duration) MessageSetting {
	return func(m *socket.Message) { m.Deadline = earlier(m.Deadline, time.Now().Add(d)) }
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Call calls serviceMethod with arg and waits for the reply, which is
// decoded into result (a pointer, or nil to ignore the body). It returns a
// done CallCmd; see its Status and Err.
//
// The call ends when the reply comes, when ctx ends (CodeTimeout or
// CodeCanceled), or when the connection breaks (CodeConnClosed). ctx's
// deadline travels to the remote handler. While a dialed session is
// redialing, Call waits for it up to ctx.
//
// A remote peer that is shutting down answers calls it will not start with
// CodeShuttingDown; a session that redials sends such a call again on its
// new connection, since the call never ran.
func (s *Session) Call(ctx context.Context, serviceMethod string, arg, result any, settings ...MessageSetting) *CallCmd {
	for {
		c := s.call(ctx, serviceMethod, arg, result, settings)
		retry := (c.replied && c.stat.Code() == CodeShuttingDown) || c.unsent
		if !retry || !s.canRedial() || ctx.Err() != nil {
			return c
		}
	}
}

func (s *Session) call(ctx context.Context, serviceMethod string, arg, result any, settings []MessageSetting) *CallCmd {
	c := s.newCall(serviceMethod, result)
	c.sync = true
	ctx, st := s.send(ctx, c, arg, settings)
	if st != nil {
		c.complete(st)
		return c
	}
	if ctx.Done() == nil {
		<-c.done // a context that never ends: a receive is cheaper than a select
	} else {
		select {
		case <-c.done:
		case <-ctx.Done():
			if s.pending.take(c.seq) == c {
				c.complete(ctxStatus(ctx, "waiting for the reply"))
				return c
			}
			<-c.done // the reply is being handed over
		}
	}
	if c.input != nil {
		c.decodeReply()
		c.record()
	}
	return c
}

// AsyncCall is Call without the wait: it returns at once, and when the call
// ends, closes the CallCmd's Done channel and sends the CallCmd on done if
// done is not nil. done must have room (buffer it); a full done channel is
// skipped and logged.
func (s *Session) AsyncCall(ctx context.Context, serviceMethod string, arg, result any, done chan<- *CallCmd, settings ...MessageSetting) *CallCmd {
	c := s.newCall(serviceMethod, result)
	c.asyncDone = done
	if _, st := s.send(ctx, c, arg, settings); st != nil {
		c.complete(st)
	}
	return c
}

// endOnDone makes an async call end when ctx does.
func (s *Session) endOnDone(ctx context.Context, c *CallCmd) {
	if ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		if s.pending.take(c.seq) == c {
			c.complete(ctxStatus(ctx, "waiting for the reply"))
		}
	})
	prev := c.cancel
	c.cancel = func() {
		stop()
		if prev != nil {
			prev()
		}
	}
}

func (s *Session) newCall(serviceMethod string, result any) *CallCmd {
	return &CallCmd{sess: s, serviceMethod: serviceMethod, result: result, done: make(chan struct{})}
}

// message returns a pooled message addressed for this peer's defaults.
func (s *Session) message(ctx context.Context, t socket.Type, serviceMethod string, arg any, settings []MessageSetting) *socket.Message {
	p := s.peer
	m := socket.AcquireMessage()
	m.Type, m.ServiceMethod, m.BodyCodec, m.Body = t, serviceMethod, p.cfg.bodyCodec, arg
	if d, ok := ctx.Deadline(); ok {
		m.Deadline = d
	}
	if age := p.cfg.ContextAge; age > 0 {
		m.Deadline = earlier(m.Deadline, time.Now().Add(age))
	}
	for _, set := range settings {
		set(m)
	}
	return m
}

// send writes c's request. It returns the context the caller should wait
// on: ctx, or one bounded by an earlier deadline the settings gave.
func (s *Session) send(ctx context.Context, c *CallCmd, arg any, settings []MessageSetting) (context.Context, *Status) {
	p := s.peer
	if p.cfg.countTime {
		c.start = time.Now()
	}
	if p.closing.Load() {
		return ctx, errPeerClosing
	}
	m := s.message(ctx, socket.TypeCall, c.serviceMethod, arg, settings)
	if d, ok := ctx.Deadline(); !m.Deadline.IsZero() && (!ok || m.Deadline.Before(d)) {
		ctx, c.cancel = context.WithDeadline(ctx, m.Deadline)
	}
	c.ctx = ctx
	sock, st := s.socket(ctx)
	if st != nil {
		socket.ReleaseMessage(m)
		return ctx, st
	}
	c.seq = s.seq.Add(1)
	m.Seq = c.seq
	c.output = m
	defer func() {
		c.output = nil
		socket.ReleaseMessage(m)
	}()
	if st := run(p.plugins.preWriteCall, PreWriteCallPlugin.PreWriteCall, WriteCtx(c)); st != nil {
		return ctx, st
	}
	if max := p.cfg.MaxPendingCalls; max > 0 && s.pending.n.Load() >= int64(max) {
		return ctx, NewStatus(CodeOverloaded, fmt.Sprintf("session has %d calls waiting, its limit; raise PeerConfig.MaxPendingCalls or call less at once", max), nil)
	}
	if !c.sync {
		// Before the add: what ends the call can only take it once it is
		// added, and by then c.cancel is set.
		s.endOnDone(ctx, c)
	}
	if !s.pending.add(c) {
		return ctx, s.endStatus(NewStatus(CodeConnClosed, "connection closed before the call was sent", nil))
	}
	if !c.sync && ctx.Err() != nil { // ended before the add, so the AfterFunc found nothing
		if s.pending.take(c.seq) == c {
			return ctx, ctxStatus(ctx, "sending the call")
		}
		return ctx, nil
	}
	if err := sock.WriteMessage(m); err != nil {
		if s.pending.take(c.seq) == c {
			st := s.writeFailed(sock, err, "cannot send the call")
			// A call the closed socket never took never left: safe to send
			// again, unless the peer ended the session on purpose.
			c.unsent = st == socket.ErrClosed
			return ctx, st
		}
		return ctx, nil // the connection's end already completed it
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", s, m, arg)
	}
	if st := run(p.plugins.postWriteCall, PostWriteCallPlugin.PostWriteCall, WriteCtx(c)); st != nil {
		p.logger.Warn("PostWriteCall hook failed after the call was sent", "service_method", c.serviceMethod, "status", st)
	}
	return ctx, nil
}

// writeFailed is what a failed send reports. A connection that broke
// under the write is often a peer that closed it right after a notice
// saying why; the read goroutine learns that on reaching the connection's
// end, then closes the socket. So wait for that, briefly, and report the
// peer's reason if it gave one.
func (s *Session) writeFailed(sock *socket.Socket, err error, doing string) *Status {
	st := status.From(err, CodeWriteFailed, doing)
	if st.Code() == CodeConnClosed && st != socket.ErrClosed {
		t := time.NewTimer(time.Second)
		select {
		case <-sock.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return s.endStatus(st)
}

var errPeerClosing = status.New(CodeShuttingDown, "peer is shutting down", nil)

// pushCtx is the WriteCtx of a push, made only when a hook wants one.
type pushCtx struct {
	sess *Session
	m    *socket.Message
	ctx  context.Context
}

func (c *pushCtx) Session() *Session        { return c.sess }
func (c *pushCtx) Output() *socket.Message  { return c.m }
func (c *pushCtx) Context() context.Context { return c.ctx }
func (c *pushCtx) StartTime() time.Time     { return time.Time{} }

// Push sends serviceMethod a one-way message carrying arg. It returns once
// the message is handed to the connection; nothing comes back. While a
// dialed session is redialing, Push waits for it up to ctx.
func (s *Session) Push(ctx context.Context, serviceMethod string, arg any, settings ...MessageSetting) *Status {
	p := s.peer
	if p.closing.Load() {
		return errPeerClosing
	}
	sock, st := s.socket(ctx)
	if st != nil {
		return st
	}
	m := s.message(ctx, socket.TypePush, serviceMethod, arg, settings)
	defer socket.ReleaseMessage(m)
	m.Seq = s.seq.Add(1)
	var wc WriteCtx
	if len(p.plugins.preWritePush) > 0 || len(p.plugins.postWritePush) > 0 {
		wc = &pushCtx{s, m, ctx}
	}
	if st := run(p.plugins.preWritePush, PreWritePushPlugin.PreWritePush, wc); st != nil {
		return st
	}
	if err := sock.WriteMessage(m); err != nil {
		return s.writeFailed(sock, err, "cannot send the push")
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", s, m, arg)
	}
	return run(p.plugins.postWritePush, PostWritePushPlugin.PostWritePush, wc)
}
