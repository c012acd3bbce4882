package tp

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// MessageSetting adjusts a message before it is sent.
type MessageSetting func(*Message)

// WithSetMeta sets a meta pair, replacing earlier values of key.
func WithSetMeta(key, value string) MessageSetting {
	return func(m *Message) { m.Meta.Set(key, value) }
}

// WithAddMeta adds a meta pair.
func WithAddMeta(key, value string) MessageSetting {
	return func(m *Message) { m.Meta.Add(key, value) }
}

// WithBodyCodec sets the body codec by id, such as codec.ProtobufID.
func WithBodyCodec(id byte) MessageSetting {
	return func(m *Message) { m.BodyCodec = id }
}

// WithXferPipe runs the packed message through the filters with these ids,
// such as gzip.ID.
func WithXferPipe(ids ...byte) MessageSetting {
	return func(m *Message) { m.XferPipe.Append(ids...) }
}

// WithContextAge bounds the call (and the remote handler's context) to d
// from now, if that is sooner than the context's deadline.
func WithContextAge(d time.Duration) MessageSetting {
	return func(m *Message) { m.Deadline = earlier(m.Deadline, time.Now().Add(d)) }
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
// A remote peer that is shutting down first says so on the connection,
// then answers calls it will not start with CodeShuttingDown; a session
// that redials sends such a call again on its new connection, since the
// call never ran. A CodeShuttingDown a handler returns on a connection
// whose peer has said nothing of the kind is the handler's answer, and
// final.
func (s *Session) Call(ctx context.Context, serviceMethod string, arg, result any, settings ...MessageSetting) *CallCmd {
	c := s.call(ctx, serviceMethod, arg, result, settings)
	if !c.resend() || !s.canRedial() {
		return c
	}
	// A resend keeps the first attempt's deadline: WithContextAge and
	// PeerConfig.ContextAge count from the Call, not from each attempt.
	if !c.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, c.deadline)
		defer cancel()
	}
	for c.resend() && s.canRedial() && ctx.Err() == nil {
		c = s.call(ctx, serviceMethod, arg, result, settings)
	}
	return c
}

// resend reports whether the call never ran and may be sent again on a
// new connection: it was never written, or the peer refused it because
// it is shutting down (which it said first, on the same connection).
func (c *CallCmd) resend() bool {
	if c.unsent {
		return true
	}
	return c.replied && c.stat.Code() == CodeShuttingDown && c.conn != nil && c.conn.noticed.Load()
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
			if c.conn.pending.take(c.seq) == c {
				st := ctxStatus(ctx, "waiting for the reply")
				c.complete(st)
				cancelRemote(c.conn, c.seq, st)
				s.leaveIfDone(c.conn)
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
// skipped and logged. While the session is redialing, the call waits for
// it on a goroutine of its own, within ctx; otherwise AsyncCall waits only
// for room among the frames queued for the connection
// (socket.Config.MaxPending), within ctx, as every write does.
func (s *Session) AsyncCall(ctx context.Context, serviceMethod string, arg, result any, done chan<- *CallCmd, settings ...MessageSetting) *CallCmd {
	c := s.newCall(serviceMethod, result)
	c.asyncDone = done
	if s.loadState() != stateActive {
		if !s.peer.spawn(func() { s.sendAsync(ctx, c, arg, settings) }) {
			c.complete(errPeerClosing)
		}
		return c
	}
	s.sendAsync(ctx, c, arg, settings)
	return c
}

func (s *Session) sendAsync(ctx context.Context, c *CallCmd, arg any, settings []MessageSetting) {
	if _, st := s.send(ctx, c, arg, settings); st != nil {
		c.complete(st)
	}
}

// endOnDone makes an async call end when ctx does.
func (s *Session) endOnDone(ctx context.Context, c *CallCmd) {
	if ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		if c.registered.Load() && c.conn.pending.take(c.seq) == c {
			st := ctxStatus(ctx, "waiting for the reply")
			c.complete(st)
			cancelRemote(c.conn, c.seq, st)
			s.leaveIfDone(c.conn)
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

// cancelRemote tells the peer that the call seq it serves on cn was
// canceled, so its handler's context ends (a peer that knows CANCEL). It
// never waits.
func cancelRemote(cn *conn, seq uint32, why *Status) {
	if !cn.streamsOK.Load() || why.Code() != CodeCanceled {
		return // a deadline travelled with the call: the handler's ends too
	}
	m := socket.AcquireMessage()
	m.Type, m.Seq = socket.TypeCancel, seq
	m.Status = NewStatus(why.Code(), why.Msg(), nil)
	cn.sock.QueueMessage(m)
	socket.ReleaseMessage(m)
}

func (s *Session) newCall(serviceMethod string, result any) *CallCmd {
	return &CallCmd{sess: s, serviceMethod: serviceMethod, result: result, done: make(chan struct{})}
}

// message returns a pooled message addressed for this peer's defaults.
func (s *Session) message(ctx context.Context, t socket.Type, serviceMethod string, arg any, settings []MessageSetting) *socket.Message {
	p := s.peer
	m := socket.AcquireMessage()
	m.Type, m.ServiceMethod, m.BodyCodec, m.Body = t, serviceMethod, p.cfg.BodyCodec, arg
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
// on: ctx, or one bounded by an earlier deadline the settings gave. A
// non-nil status means the call is not registered, and the caller
// completes it; nil means whoever takes it from the pending table does.
func (s *Session) send(ctx context.Context, c *CallCmd, arg any, settings []MessageSetting) (context.Context, *Status) {
	p := s.peer
	if p.cfg.countTime {
		c.start = time.Now()
	}
	if p.closing.Load() {
		return ctx, errPeerClosing
	}
	if ctx.Err() != nil {
		return ctx, ctxStatus(ctx, "before the call was sent")
	}
	if c.result != nil {
		if t := reflect.TypeOf(c.result); t.Kind() != reflect.Pointer {
			// Checked here, not after the remote handler ran.
			return ctx, NewStatus(CodeInvalidArgument, "the result must be a pointer or nil, got "+t.String(), nil)
		}
	}
	m := s.message(ctx, socket.TypeCall, c.serviceMethod, arg, settings)
	defer socket.ReleaseMessage(m)
	if d, ok := ctx.Deadline(); !m.Deadline.IsZero() && (!ok || m.Deadline.Before(d)) {
		ctx, c.cancel = context.WithDeadline(ctx, m.Deadline)
	}
	c.deadline = m.Deadline
	c.ctx = ctx
	cn, st := s.conn(ctx)
	if st != nil {
		return ctx, st
	}
	c.conn = cn
	if max := p.cfg.MaxPendingCalls; max > 0 && cn.pending.n.Load() >= int64(max) {
		return ctx, NewStatus(CodeOverloaded, fmt.Sprintf("session has %d calls waiting, its limit; raise PeerConfig.MaxPendingCalls or call less at once", max), nil)
	}
	if !c.sync {
		// Before the add: what ends the call can only take it once it is
		// added, and by then c.cancel is set.
		s.endOnDone(ctx, c)
	}
	if !s.register(cn, c) {
		c.unsent = true // the connection ended first: the call never left
		return ctx, cn.endStatus(NewStatus(CodeConnClosed, "connection closed before the call was sent", nil))
	}
	c.registered.Store(true) // after the seq is set: endOnDone's reader relies on it
	m.Seq = c.seq
	c.output = m
	defer func() { c.output = nil }()
	// From here on the call is registered: whoever takes it completes it.
	// withdraw takes it back for this goroutine, and reports st if it did.
	withdraw := func(st *Status) *Status {
		if cn.pending.take(c.seq) == c {
			s.leaveIfDone(cn)
			return st
		}
		return nil
	}
	if st := run(p.plugins.preWriteCall, PreWriteCallPlugin.PreWriteCall, WriteCtx(c)); st != nil {
		return ctx, withdraw(st)
	}
	if st := cn.seal(m, false); st != nil {
		return ctx, withdraw(st)
	}
	if !c.sync && ctx.Err() != nil { // ended before registered, so the AfterFunc found nothing
		return ctx, withdraw(ctxStatus(ctx, "sending the call"))
	}
	c.writing = true
	if err := cn.sock.WriteMessage(ctx, m); err != nil {
		st := s.writeFailed(cn, err, "cannot send the call")
		// A call the socket never took never left: safe to send again,
		// unless the peer ended the session on purpose.
		st = withdraw(st)
		c.unsent = st == socket.ErrClosed
		return ctx, st
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", s, m, arg)
	}
	if st := run(p.plugins.postWriteCall, PostWriteCallPlugin.PostWriteCall, WriteCtx(c)); st != nil {
		p.logger.Warn("PostWriteCall hook failed after the call was sent", "service_method", c.serviceMethod, "status", st)
	}
	return ctx, nil
}

// register gives c a seq no call waiting on cn has and adds it to cn's
// table. Seqs wrap after 2^32 calls; a call that waits that long keeps
// its seq, and the next call skips it. It reports false when cn has
// ended.
func (s *Session) register(cn *conn, c *CallCmd) bool {
	for {
		c.seq = s.seq.Add(1)
		switch cn.pending.add(c) {
		case added:
			return true
		case tableShut:
			return false
		}
	}
}

// writeFailed is what a failed send reports. A connection that broke
// under the write is often a peer that closed it right after a notice
// saying why; the read goroutine learns that on reaching the connection's
// end, then closes the socket. So wait for that, briefly, and report the
// peer's reason if it gave one.
func (s *Session) writeFailed(cn *conn, err error, doing string) *Status {
	st := status.From(err, CodeWriteFailed, doing)
	if st.Code() == CodeConnClosed && st != socket.ErrClosed {
		t := time.NewTimer(time.Second)
		select {
		case <-cn.sock.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return cn.endStatus(st)
}

var errPeerClosing = status.New(CodeShuttingDown, "peer is shutting down", nil)

// pushCtx is the WriteCtx of a push, made only when a hook wants one.
type pushCtx struct {
	sess *Session
	m    *socket.Message
	ctx  context.Context
}

func (c *pushCtx) Session() *Session        { return c.sess }
func (c *pushCtx) Output() *Message         { return c.m }
func (c *pushCtx) Route() string            { return c.m.ServiceMethod }
func (c *pushCtx) Context() context.Context { return c.ctx }
func (c *pushCtx) StartTime() time.Time     { return time.Time{} }

// Push sends serviceMethod a one-way message carrying arg. It returns once
// the message is handed to the connection; nothing comes back. While a
// dialed session is redialing, Push waits for it up to ctx.
func (s *Session) Push(ctx context.Context, serviceMethod string, arg any, settings ...MessageSetting) error {
	p := s.peer
	if p.closing.Load() {
		return errPeerClosing
	}
	if ctx.Err() != nil {
		return ctxStatus(ctx, "before the push was sent")
	}
	cn, st := s.conn(ctx)
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
	if st := cn.seal(m, false); st != nil {
		return st
	}
	if err := cn.sock.WriteMessage(ctx, m); err != nil {
		return s.writeFailed(cn, err, "cannot send the push")
	}
	if p.cfg.PrintDetail {
		p.logMessage("send", s, m, arg)
	}
	if st := run(p.plugins.postWritePush, PostWritePushPlugin.PostWritePush, wc); st != nil {
		return st
	}
	return nil
}
