package tp

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
)

// CallCmd is one CALL: the request sent and, once Done is closed, the
// outcome. Its methods other than Done may be called only after Done is
// closed (Call returns it done).
type CallCmd struct {
	sess          *Session
	conn          *conn       // the connection the call went out on
	registered    atomic.Bool // in conn's pending table under seq
	serviceMethod string
	seq           uint32
	result        any
	output        *socket.Message // the request, until it is written
	input         *socket.Message // the reply, while it is decoded
	stat          *Status
	inputMeta     socket.Meta
	done          chan struct{}
	asyncDone     chan<- *CallCmd
	sync          bool               // a caller waits and decodes the reply itself
	replied       bool               // the outcome came from the remote's reply
	unsent        bool               // the socket was closed before the call was written
	writing       bool               // the call was handed to the socket
	cancel        context.CancelFunc // ends the call's own deadline, if it has one
	deadline      time.Time          // the deadline the request carried
	ctx           context.Context    // the caller's, for hooks
	start         time.Time
	cost          time.Duration
}

var (
	_ WriteCtx = (*CallCmd)(nil)
	_ ReadCtx  = (*CallCmd)(nil)
)

// Session returns the session the call went out on.
func (c *CallCmd) Session() *Session { return c.sess }

// ServiceMethod returns the route called.
func (c *CallCmd) ServiceMethod() string { return c.serviceMethod }

// Route returns the route called, as ServiceMethod does, for hooks.
func (c *CallCmd) Route() string { return c.serviceMethod }

// Seq returns the call's sequence number.
func (c *CallCmd) Seq() uint32 { return c.seq }

// Done is closed when the call has its outcome.
func (c *CallCmd) Done() <-chan struct{} { return c.done }

// Status returns the outcome: nil when the call succeeded.
func (c *CallCmd) Status() *Status { return c.stat }

// Err returns the outcome as an error: nil exactly when the call succeeded.
// Use it rather than Status where an error is expected, since a nil
// *Status stored in an error is not a nil error.
func (c *CallCmd) Err() error {
	if c.stat.OK() {
		return nil
	}
	return c.stat
}

// NeverRan reports whether the call failed in a way that proves it never
// ran on the peer: it was never written (the session was closed or
// unreachable, a hook or the context stopped it first, the connection
// ended before it left), or the peer refused it unrun because it is
// shutting down, which it had said on that connection. Such a call may be
// sent again elsewhere, whatever it does. A call that failed any other way
// (a connection that broke while it waited, a deadline, a reply with an
// error) may have run. A call that succeeded reports false.
func (c *CallCmd) NeverRan() bool {
	return c.stat != nil && (!c.writing || c.resend())
}

// Result returns the result value passed to Call, filled by the reply.
func (c *CallCmd) Result() any { return c.result }

// InputMeta returns the reply's meta.
func (c *CallCmd) InputMeta() *Meta { return &c.inputMeta }

// CostTime returns how long the call took, when PeerConfig.CountTime (or
// PrintDetail, or SlowCallThreshold) is set; otherwise 0.
func (c *CallCmd) CostTime() time.Duration { return c.cost }

// Output is the request, for write hooks.
func (c *CallCmd) Output() *Message { return c.output }

// Input is the reply, for read hooks.
func (c *CallCmd) Input() *Message { return c.input }

// Body is the result value, for read hooks.
func (c *CallCmd) Body() any { return c.result }

// Context is the context the call was made with (bounded by its deadline),
// for hooks.
func (c *CallCmd) Context() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}

// SetContext replaces the context later hooks of this call see through
// Context (the reply hooks, CallDone): a tracing plugin keeps its span
// there. ctx should derive from Context. It does not change how long the
// call waits.
func (c *CallCmd) SetContext(ctx context.Context) { c.ctx = ctx }

// StartTime is when the call was made; zero unless PeerConfig.CountTime
// (or an option implying it) is set.
func (c *CallCmd) StartTime() time.Time { return c.start }

// decodeReply runs the reply's hooks, decodes its body into the result and
// takes its status and meta. It releases the reply.
func (c *CallCmd) decodeReply() {
	m := c.input
	p := c.sess.peer
	st := run(p.plugins.postReadReplyHeader, PostReadReplyHeaderPlugin.PostReadReplyHeader, ReadCtx(c))
	if st == nil {
		st = run(p.plugins.preReadReplyBody, PreReadReplyBodyPlugin.PreReadReplyBody, ReadCtx(c))
	}
	if st == nil {
		st = m.Status
		if st.OK() && c.result != nil {
			if err := m.UnmarshalBody(c.result); err != nil {
				st = toStatus(err)
			}
		}
	}
	if st == nil {
		st = run(p.plugins.postReadReplyBody, PostReadReplyBodyPlugin.PostReadReplyBody, ReadCtx(c))
	}
	c.stat, c.replied = st, true
	c.inputMeta.AddAll(&m.Meta)
	c.input = nil
	if p.cfg.PrintDetail {
		p.logMessage("recv", c.sess, m, c.result)
	}
	socket.ReleaseMessage(m)
}

// complete gives the call an outcome that is not a reply (or a reply the
// read goroutine decoded) and wakes whoever waits.
func (c *CallCmd) complete(st *Status) {
	c.stat = st
	c.record()
	close(c.done)
	if c.asyncDone != nil {
		select {
		case c.asyncDone <- c:
		default:
			c.sess.peer.logger.Error("AsyncCall's done channel is full; the outcome is only on CallCmd.Done", "service_method", c.serviceMethod, "seq", c.seq)
		}
	}
}

// record releases the call's deadline, measures its cost and runs the
// CallDone hooks: it runs once per call, on every path to its outcome.
func (c *CallCmd) record() {
	if c.cancel != nil {
		c.cancel()
	}
	p := c.sess.peer
	if !c.start.IsZero() {
		c.cost = time.Since(c.start)
		if t := p.cfg.SlowCallThreshold; t > 0 && c.cost > t {
			p.logger.Warn("slow call", "service_method", c.serviceMethod, "seq", c.seq, "cost", c.cost, "session", c.sess.ID(), "status", c.stat)
		}
	}
	for _, h := range p.plugins.callDone {
		h.CallDone(c)
	}
}
