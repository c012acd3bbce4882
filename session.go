package tp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// Session is one connection between two peers, seen from one end. Either
// end may Call or Push on it. A dialed session whose connection breaks is
// redialed when PeerConfig.RedialTimes allows; the Session and its ID
// survive the redial, but nothing of the broken connection does: calls
// waiting on it fail, and a reply it carried late can complete no call
// made since. All methods are safe for concurrent use.
//
// Concurrency: each session has one read goroutine, which reads frames,
// completes calls by seq and hands CALLs and PUSHes to the peer's handler
// pool. What the read goroutine writes (refusals, notices) is queued,
// never waited for. Writes from any goroutine share syscalls (see package
// socket).
type Session struct {
	peer     *Peer
	key      uint64 // the hub's key: unique in the peer, never reused
	id       atomic.Pointer[string]
	cur      atomic.Pointer[conn]
	seq      atomic.Uint32
	values   sync.Map // by *Key: see Key
	dialAddr string   // the redial target; "" for accepted sessions

	// ctx ends when the session closes for good; handler contexts and
	// redial waits derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex    // guards changes of state, and up
	state atomic.Int32  // a sessionState: changed under mu, read without it
	up    chan struct{} // closed while connected; a new one during a redial

	ended       atomic.Pointer[Status] // why the session closed for good
	lastWarn    atomic.Int64           // unix nanoseconds of the last warnLimited WARN
	heldBack    atomic.Int64           // warnLimited lines logged at DEBUG since
	handshaking atomic.Bool            // PostDial or PostAccept hooks run: see ReadHandshake
	born        time.Time              // when the first connection was made
	age         *time.Timer
	endOnce     sync.Once // PostDisconnect runs once

	// Guarded by the hub's mutex: see hub.
	inHub, leftHub bool
	named          bool // SetID gave the ID; a default one yields to it
}

// conn is one connection in a session's life. What it holds ends with it:
// the calls sent on it wait in its own table, so a reply it carries can
// complete only a call it carried, and a redial starts clean.
type conn struct {
	sock    *socket.Socket
	ctx     context.Context // ends with the connection; handler contexts derive from it
	cancel  context.CancelFunc
	pending pendingCalls
	serving atomic.Int64 // CALLs and PUSHes read on it and not yet handled

	greeted  chan struct{} // closed when the peer's first frame (its hello) arrives
	greet    sync.Once
	noticed  atomic.Bool   // the peer said it is shutting down
	draining atomic.Bool   // we leave it once the calls on it are done
	answered chan struct{} // closed when the peer answers our shutdown notice
	moving   atomic.Bool   // its answer: it will leave this connection itself
	answer   sync.Once
	ended    atomic.Pointer[Status] // the reason the peer gave for ending it

	sealing atomic.Pointer[sealing] // set by SetSealer

	// The read goroutine may run a handler itself (see runInline).
	inlineNext *handlerCtx // the one dispatch left it; read goroutine only
	inline     atomic.Bool // it runs one now, and nobody took the reads over
	watch      *time.Timer // takes the reads over past inlineWatch

	streamsOK atomic.Bool // the peer's hello says it knows streams and CANCEL
	streams   streamTable
	running   runningCalls // CALLs in handlers, for CANCEL
}

func newConn(parent context.Context, sock *socket.Socket) *conn {
	cn := &conn{sock: sock, answered: make(chan struct{}), greeted: make(chan struct{})}
	cn.ctx, cn.cancel = context.WithCancel(parent)
	return cn
}

// greetedNow records that the peer has spoken on cn.
func (cn *conn) greetedNow() { cn.greet.Do(func() { close(cn.greeted) }) }

// awaitHello waits until the peer has spoken on the first connection,
// which ends or fails within ctx and the handshake timeout: a Dial is done
// only when the peer is known to serve tp.
func (s *Session) awaitHello(ctx context.Context) *Status {
	cn := s.cur.Load()
	if t := s.peer.cfg.HandshakeTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	select {
	case <-cn.greeted:
		return nil
	case <-cn.ctx.Done():
		return cn.endStatus(NewStatus(CodeDialFailed, "the connection closed before the peer said hello", nil))
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return NewStatus(CodeDialFailed, "the peer said no hello in time: is a tp peer serving there?", ctx.Err())
		}
		return ctxStatus(ctx, "waiting for the peer's hello")
	}
}

// endStatus is the reason the peer gave for ending the connection, or
// otherwise when it gave none: callers of a session the peer ended learn
// its word rather than a bare "closed".
func (cn *conn) endStatus(otherwise *Status) *Status {
	if st := cn.ended.Load(); st != nil {
		return st
	}
	return otherwise
}

type sessionState int

const (
	stateActive sessionState = iota // the zero value: a new session is connected
	stateRedialing
	stateClosed
)

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newSession(p *Peer, sock *socket.Socket, dialAddr string) *Session {
	s := &Session{peer: p, dialAddr: dialAddr, up: closedChan, key: p.hub.nextKey(), born: time.Now()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cur.Store(newConn(s.ctx, sock))
	id := sock.RemoteAddr().String()
	s.id.Store(&id)
	return s
}

// ID returns the session's ID: the remote address unless SetID changed it.
// A second session from the same address gets "remote|local" instead, so
// the default IDs of a peer's sessions differ.
func (s *Session) ID() string { return *s.id.Load() }

// SetID names the session, for Peer.Session to find it by. Another session
// the peer holds under id is closed: the newer one replaces it (a user
// who logs in again, say). SetID in a PostAccept or PostDial hook names the
// session before anyone can find it; on a closed session it only changes
// what ID returns.
func (s *Session) SetID(id string) { s.peer.hub.rename(s, id) }

// Peer returns the peer the session belongs to.
func (s *Session) Peer() *Peer { return s.peer }

// LocalAddr returns the local address of the current connection.
func (s *Session) LocalAddr() net.Addr { return s.sock().LocalAddr() }

// RemoteAddr returns the remote address of the current connection.
func (s *Session) RemoteAddr() net.Addr { return s.sock().RemoteAddr() }

// Health reports whether the session takes new work: it is connected, not
// waiting for a redial, and not leaving a peer that shuts down.
func (s *Session) Health() bool {
	return s.loadState() == stateActive && !s.cur.Load().draining.Load()
}

// TLS returns the TLS state of the current connection, or nil when it is
// not a TLS connection.
func (s *Session) TLS() *tls.ConnectionState {
	if tc, ok := s.sock().Conn().(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// Done is closed when the session has closed for good.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns nil while the session is open, and once Done is closed, why
// it closed: the reason the peer gave, the connection's failure (after
// any redials), or a status saying it was closed on this side.
func (s *Session) Err() error {
	if st := s.ended.Load(); st != nil {
		return st
	}
	return nil
}

// end records why the session closes, unless a reason came first.
func (s *Session) end(st *Status) { s.ended.CompareAndSwap(nil, st) }

// Close closes the session for good: no redial follows, and the peer's
// hub no longer holds it. Calls waiting on it fail with CodeConnClosed.
// Frames already queued are flushed first, for at most the socket's flush
// timeout. Close is idempotent and does not wait for the read goroutine;
// Peer.Close does.
func (s *Session) Close() error {
	return s.closeWithin(context.Background())
}

// closeWithin is Close with the flush also bounded by ctx.
func (s *Session) closeWithin(ctx context.Context) error {
	s.mu.Lock()
	if s.loadState() == stateClosed {
		s.mu.Unlock()
		return nil
	}
	if s.loadState() == stateRedialing {
		close(s.up) // waiters see stateClosed
	}
	s.end(errSessionClosed)
	s.setState(stateClosed)
	s.mu.Unlock()
	s.peer.hub.remove(s)
	s.cancel()
	return s.cur.Load().sock.Shutdown(ctx)
}

// replaced ends a session whose ID a newer one took. The peer is told
// why; the flush happens on a goroutine of its own (joined by Peer.Close),
// so SetID and the hooks that call it do not wait on the old session's
// network.
func (s *Session) replaced() {
	notify(s.cur.Load(), errReplaced)
	if !s.peer.spawn(func() { s.Close() }) {
		s.Close() // the peer is closing: Close waits for this anyway
	}
}

var errReplaced = status.New(CodeConnClosed, "a newer session took this session's ID", nil)

// sock is the current connection's socket.
func (s *Session) sock() *socket.Socket { return s.cur.Load().sock }

// setState moves the session to st. Called with mu held.
func (s *Session) setState(st sessionState) { s.state.Store(int32(st)) }

// loadState is the session's state; without mu held, it may change at once.
func (s *Session) loadState() sessionState { return sessionState(s.state.Load()) }

// conn returns the current connection, waiting through a redial until ctx
// ends.
func (s *Session) conn(ctx context.Context) (*conn, *Status) {
	if s.loadState() == stateActive { // the common case, without the lock every caller would share
		if cn := s.cur.Load(); !cn.draining.Load() {
			return cn, nil
		}
	}
	for {
		s.mu.Lock()
		state, up := s.loadState(), s.up
		s.mu.Unlock()
		switch state {
		case stateActive:
			if cn := s.cur.Load(); !cn.draining.Load() {
				return cn, nil
			}
			return nil, errLeaving
		case stateClosed:
			return nil, s.cur.Load().endStatus(errSessionClosed)
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctxStatus(ctx, "waiting for the session to redial")
		}
	}
}

var errSessionClosed = status.New(CodeConnClosed, "session is closed", nil)

// errLeaving refuses new work on a session that cannot redial and is
// leaving a peer that shuts down: nothing of it is sent.
var errLeft = status.New(CodeShuttingDown, "the peer shut down; the session left it once its calls were done", nil)

var errLeaving = status.New(CodeShuttingDown, "the peer is shutting down; the session takes no new work and closes once its calls are done", nil)

func ctxStatus(ctx context.Context, doing string) *Status {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return NewStatus(CodeTimeout, "deadline passed "+doing, ctx.Err())
	}
	return NewStatus(CodeCanceled, "canceled "+doing, context.Cause(ctx))
}

// serve runs the session's read goroutine until the session closes for
// good, redialing in between when allowed.
func (s *Session) serve() { s.serveFrom(nil) }

// serveFrom is serve, resuming the reads of resume (which a read
// goroutine running a handler itself handed over, see runInline) before
// going on as serve does.
func (s *Session) serveFrom(resume *conn) {
	p := s.peer
	defer p.loops.Done()
	for {
		cn := s.cur.Load()
		first := resume == nil
		if !first {
			cn, resume = resume, nil
		}
		err := s.readLoop(cn, first)
		if err == errHandedOff {
			return // another goroutine reads cn now, and ends it
		}
		st := status.From(err, CodeConnClosed, "connection closed")
		if cn.draining.Load() && !s.canRedial() {
			st = errLeft // it ended its reads itself, leaving
		}
		var notice *closeNotice
		if errors.As(err, &notice) {
			st = notice.st     // the peer said why: callers get its word
			cn.ended.Store(st) // before the close, so no write fails without it
		}
		cn.sock.Close()
		cn.cancel()
		cn.streams.shutAll(NewStatus(CodeConnClosed, "the connection closed", st))
		for _, c := range cn.pending.closeAll() {
			if notice != nil {
				c.complete(st)
			} else {
				c.complete(NewStatus(CodeConnClosed, "connection closed before the reply", st))
			}
		}
		if !s.redial(st) {
			s.end(st)
			break
		}
	}
	s.finish()
}

// readLoop reads cn until it fails. The first frame must come within the
// handshake timeout; every tp peer sends a hello at once.
func (s *Session) readLoop(cn *conn, first bool) error {
	p, sock := s.peer, cn.sock
	select {
	case <-cn.greeted: // the hello was read already (a redial reads it)
		first = false
	default:
	}
	if t := p.cfg.HandshakeTimeout; t > 0 && first {
		sock.SetReadDeadline(time.Now().Add(t))
	}
	for ; ; first = false {
		if st := run(p.plugins.preReadHeader, PreReadHeaderPlugin.PreReadHeader, s); st != nil {
			return st
		}
		m := socket.AcquireMessage()
		if err := sock.ReadMessage(m); err != nil {
			socket.ReleaseMessage(m)
			if first && status.From(err, 0, "").Code() == CodeTimeout {
				return NewStatus(CodeTimeout, "the peer sent nothing within the handshake timeout", err)
			}
			return err
		}
		if first && p.cfg.HandshakeTimeout > 0 {
			sock.SetReadDeadline(time.Time{})
		}
		if m.Type == socket.TypePush && m.ServiceMethod == "" && m.Status == nil {
			cn.heard(m) // before greeted: a stream opened then must know
		}
		if notice := m.Type == socket.TypePush && m.ServiceMethod == ""; !notice || m.Status == nil || m.Status.Code() == CodeShuttingDown {
			cn.greetedNow() // anything but a refusal: the peer serves
		}
		switch {
		case m.Type == socket.TypeReply:
			s.reply(cn, m)
		case m.Type == socket.TypePush && m.ServiceMethod == "" && m.Status == nil:
			socket.ReleaseMessage(m) // a hello: the peer is a tp peer and speaks
		case m.Type == socket.TypePush && m.ServiceMethod == "" && m.Status != nil:
			st, answer := m.Status, m.Meta.Get(answerKey)
			socket.ReleaseMessage(m)
			if st.Code() == CodeShuttingDown {
				s.shutdownNotice(cn, answer)
				continue
			}
			return &closeNotice{st}
		case m.Type >= socket.TypeOpen:
			if err := s.streamFrame(cn, m); err != nil {
				if st, ok := err.(*Status); ok {
					notify(cn, st) // the peer broke the protocol: it learns how
				}
				return err
			}
		default:
			if err := p.dispatch(s, cn, m); err != nil {
				return err
			}
			if c := cn.inlineNext; c != nil {
				cn.inlineNext = nil
				if s.runInline(cn, c) {
					return errHandedOff
				}
			}
		}
	}
}

// readHello reads the peer's first frame on cn, unless a handshake hook
// has seen it already: its hello, within timeout. A notice instead is
// the peer's refusal, and its status is returned.
func readHello(cn *conn, timeout time.Duration) *Status {
	select {
	case <-cn.greeted:
		return nil
	default:
	}
	sock := cn.sock
	if timeout > 0 {
		sock.SetReadDeadline(time.Now().Add(timeout))
		defer sock.SetReadDeadline(time.Time{})
	}
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := sock.ReadMessage(m); err != nil {
		return status.From(err, CodeConnClosed, "no hello from the peer")
	}
	switch {
	case m.Type != socket.TypePush || m.ServiceMethod != "":
		return NewStatus(CodeBadMessage, fmt.Sprintf("the peer's first frame was a %s, not its hello", m.Type), nil)
	case m.Status != nil:
		return m.Status // the peer refused, and said why
	}
	cn.heard(m)
	cn.greetedNow()
	return nil
}

// errHandedOff ends a read loop whose reads another goroutine took over.
var errHandedOff = errors.New("tp: the reads were handed over")

// inlineWatch is how long a handler may run on its connection's read
// goroutine before another goroutine takes the reads over, so a handler
// that blocks holds up the messages behind it no longer than this.
const inlineWatch = 100 * time.Microsecond

// runInline runs c on the read goroutine. dispatch leaves it c when the
// peer is quiet (no other handler in flight, nothing more read on cn) and
// the pool has room (c counts against PoolSize as a pool handler would):
// that saves the hand-off to the pool, a wake-up of another thread a lone
// caller pays in full. Under load messages go to the pool, so handlers
// run side by side and no connection's reads wait on a handler. If c
// runs past inlineWatch, a new goroutine takes the reads over; runInline
// reports whether one did, and then this goroutine must stop reading.
func (s *Session) runInline(cn *conn, c *handlerCtx) (handedOff bool) {
	cn.inline.Store(true)
	if cn.watch == nil {
		cn.watch = time.AfterFunc(inlineWatch, func() { s.takeOver(cn) })
	} else {
		cn.watch.Reset(inlineWatch)
	}
	c.run()
	s.peer.queue.endInline()
	if cn.inline.CompareAndSwap(true, false) {
		cn.watch.Stop() // a late firing finds inline false and does nothing
		return false
	}
	return true // the timer is the new reader's now
}

// takeOver starts a new read goroutine for cn if its reader is still in a
// handler.
func (s *Session) takeOver(cn *conn) {
	if cn.inline.CompareAndSwap(true, false) {
		s.peer.loops.Add(1) // the reader in the handler still counts one: Close waits
		go s.serveFrom(cn)
	}
}

// reply completes the call m answers, if it went out on cn and still waits.
func (s *Session) reply(cn *conn, m *socket.Message) {
	st := cn.open(m, false)
	var c *CallCmd
	if st != ErrDiscard {
		c = cn.pending.take(m.Seq)
	}
	if c == nil {
		s.peer.logger.Debug("dropped a reply nobody waits for", "seq", m.Seq, "service_method", clip(m.ServiceMethod), "session", clip(s.ID()), "status", st)
		socket.ReleaseMessage(m)
		return
	}
	defer s.leaveIfDone(cn)
	if st != nil { // it fails its seal: tampered with on the way
		socket.ReleaseMessage(m)
		c.complete(st)
		return
	}
	c.input = m
	if c.sync {
		close(c.done) // the caller decodes: it is waking up anyway
		return
	}
	c.decodeReply()
	c.complete(c.stat)
}

// canRedial reports whether the session redials when its connection ends.
func (s *Session) canRedial() bool {
	p := s.peer
	return s.dialAddr != "" && p.cfg.RedialTimes != 0 && !p.closing.Load()
}

// answerKey is the meta key of the answer to a shutdown notice: "move"
// (this tp's only answer: it redials or leaves), or "stay" from an older
// peer. A notice without it comes from the peer that shuts down.
const answerKey = "tp-answer"

// shutdownNotice handles a CodeShuttingDown notice on cn: the peer is
// shutting down, or it answers ours.
func (s *Session) shutdownNotice(cn *conn, answer string) {
	if answer != "" {
		cn.moving.Store(answer == "move")
		cn.answer.Do(func() { close(cn.answered) })
		return
	}
	cn.noticed.Store(true)
	s.drain(cn)
}

// drain answers a peer's shutdown notice: the peer still replies to the
// calls it has, but takes no new ones. A session that can redial holds new
// calls until it has, on a new connection (which the peer's successor
// process may serve); one that cannot refuses them at once with
// errLeaving, unsent, so its owner may send them elsewhere, and ends.
//
// Draining, the session tells the peer it will leave, so the peer waits
// for it rather than cutting the connection, and closes the connection
// itself once the calls on it are done both ways (its own, and those it
// serves for the peer): calls the peer got late are still answered, and
// no data is lost to a reset.
func (s *Session) drain(cn *conn) {
	redial := s.canRedial()
	s.mu.Lock() // before the flag: conn sees a draining connection only once the state says what to do
	if cn.draining.Swap(true) {
		s.mu.Unlock()
		return
	}
	if redial && s.loadState() == stateActive && s.cur.Load() == cn {
		s.setState(stateRedialing)
		s.up = make(chan struct{})
	}
	s.mu.Unlock()
	notify(cn, NewStatus(CodeShuttingDown, "moving to a new connection", nil), answerKey, "move")
	if redial {
		s.peer.logger.Info("peer is shutting down; new calls wait for a new connection", "session", s.ID())
	} else {
		s.peer.logger.Info("peer is shutting down; the session closes once its calls are done", "session", s.ID())
	}
	s.leaveIfDone(cn)
}

// leaveIfDone ends a draining connection once nothing is in flight on it
// either way. It only stops the read, which callers (the read goroutine
// among them) need not wait for: the read loop then ends, closes the
// connection, flushing what is queued, and the session redials.
func (s *Session) leaveIfDone(cn *conn) {
	if cn.draining.Load() && cn.pending.n.Load() == 0 && cn.serving.Load() == 0 {
		cn.sock.SetReadDeadline(time.Now())
	}
}

// closeNotice is the last message of a peer that ends a session for a
// reason: a PUSH with no service method and a status.
type closeNotice struct{ st *Status }

func (n *closeNotice) Error() string { return "peer closed the session: " + n.st.Error() }

// hello is the first frame of every tp connection: it tells the peer's
// handshake timeout that this end speaks. It is queued, never waited for:
// on a synchronous conn such as net.Pipe a write waits for the other end
// to read, and that end may be sending its own hello first.
func hello(cn *conn) {
	m := socket.AcquireMessage()
	m.Type = socket.TypePush
	m.Meta.Set(featuresKey, features)
	cn.sock.QueueMessage(m)
	socket.ReleaseMessage(m)
}

// featuresKey is the hello's meta key listing what this tp knows beyond
// CALL, REPLY and PUSH; a peer sends the other types only to a peer that
// lists them, so an older peer never sees them.
const (
	featuresKey = "tp-features"
	features    = "streams,cancel"
)

// heard records what the peer's hello says it knows.
func (cn *conn) heard(hello *socket.Message) {
	if strings.Contains(hello.Meta.Get(featuresKey), "streams") {
		cn.streamsOK.Store(true)
	}
}

// notify queues a notice for the peer: a PUSH with no service method and
// a status. CodeShuttingDown means "finishing, then closing" (or, with the
// answer meta, the answer to that); any other code means the connection
// ends now, for that reason. It never waits, so the read goroutine and
// Close may send it whatever the network does.
func notify(cn *conn, st *Status, meta ...string) {
	m := socket.AcquireMessage()
	m.Type, m.Status = socket.TypePush, st
	for i := 0; i+1 < len(meta); i += 2 {
		m.Meta.Add(meta[i], meta[i+1])
	}
	cn.sock.QueueMessage(m)
	socket.ReleaseMessage(m)
}

// redial reconnects a dialed session whose connection broke. It reports
// whether the session is connected again.
func (s *Session) redial(cause *Status) bool {
	p := s.peer
	if !s.canRedial() {
		return false
	}
	s.mu.Lock()
	if s.loadState() == stateClosed {
		s.mu.Unlock()
		return false
	}
	if s.loadState() != stateRedialing { // draining already made the channel callers wait on
		s.up = make(chan struct{})
	}
	s.setState(stateRedialing)
	s.mu.Unlock()
	p.logger.Warn("connection broke; redialing", "session", s.ID(), "addr", s.dialAddr, "cause", cause)

	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; p.cfg.RedialTimes < 0 || i < p.cfg.RedialTimes; i++ {
		t.Reset(p.cfg.RedialInterval)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return false
		case <-p.closed.Done():
			return false
		}
		sock, st := p.dial(s.ctx, s.dialAddr)
		if st != nil {
			p.logger.Debug("redial failed", "session", s.ID(), "attempt", i+1, "status", st)
			continue
		}
		cn := newConn(s.ctx, sock)
		s.cur.Store(cn)
		limit := sock.ReadLimit()
		sock.SetReadLimit(min(limit, p.cfg.HandshakeReadLimit))
		st = p.postDial(s, true)
		sock.SetReadLimit(limit)
		if st != nil {
			p.logger.Warn("a plugin refused the redialed session", "session", s.ID(), "status", st)
			notify(cn, st)
			sock.Close()
			cn.cancel()
			continue
		}
		// Connected only once the peer says hello: a dial that reaches no
		// tp peer (a listener that is closing, a connectionless transport
		// dialing into nothing) is a failed attempt, and the calls waiting
		// for the redial go on waiting.
		hello(cn)
		if st := readHello(cn, p.cfg.HandshakeTimeout); st != nil {
			p.logger.Debug("redial reached no tp peer", "session", s.ID(), "attempt", i+1, "status", st)
			sock.Close()
			cn.cancel()
			continue
		}
		s.mu.Lock()
		if s.loadState() == stateClosed { // closed while we dialed
			s.mu.Unlock()
			sock.Close()
			cn.cancel()
			return false
		}
		s.setState(stateActive)
		close(s.up)
		s.mu.Unlock()
		p.logger.Info("redialed", "session", s.ID(), "addr", s.dialAddr)
		return true
	}
	p.logger.Warn("gave up redialing", "session", s.ID(), "addr", s.dialAddr)
	return false
}

// finish ends a session for good, once its read goroutine stops.
func (s *Session) finish() {
	s.Close()
	if s.age != nil {
		s.age.Stop()
	}
	s.disconnected()
}

// disconnected runs the PostDisconnect hooks: once for every session the
// PostDial or PostAccept hooks saw, served or refused.
func (s *Session) disconnected() {
	s.endOnce.Do(func() {
		for _, h := range s.peer.plugins.postDisconnect {
			h.PostDisconnect(s)
		}
	})
}

// WriteHandshake writes m straight to the connection. It is for PostDial
// and PostAccept hooks, which run before the session serves and may talk
// to the peer first: an auth or key exchange, say. Elsewhere it fails with
// CodeFailedPrecondition.
func (s *Session) WriteHandshake(m *Message) error {
	if !s.handshaking.Load() {
		return errNotHandshaking
	}
	if st := s.cur.Load().seal(m, true); st != nil {
		return st
	}
	ctx, cancel := s.handshakeCtx()
	defer cancel()
	if err := s.sock().WriteMessage(ctx, m); err != nil {
		return status.From(err, CodeWriteFailed, "cannot write the handshake")
	}
	return nil
}

// ReadHandshake reads the next message straight off the connection into
// m, waiting up to timeout (0: PeerConfig.HandshakeTimeout), for PostDial
// and PostAccept hooks like WriteHandshake. The peer's hello is skipped,
// and a close notice
// comes back as the status the peer gave. Once the session serves, its
// read goroutine owns the reads, and ReadHandshake fails with
// CodeFailedPrecondition.
func (s *Session) ReadHandshake(m *Message, timeout time.Duration) error {
	if !s.handshaking.Load() {
		return errNotHandshaking
	}
	sock := s.sock()
	if timeout == 0 {
		timeout = s.peer.cfg.HandshakeTimeout
	}
	if timeout > 0 {
		sock.SetReadDeadline(time.Now().Add(timeout))
		defer sock.SetReadDeadline(time.Time{})
	}
	for {
		m.Reset()
		if err := sock.ReadMessage(m); err != nil {
			st := status.From(err, CodeConnClosed, "connection closed during the handshake")
			if st.Code() == CodeTimeout {
				return NewStatus(CodeTimeout, "the peer did not answer the handshake in time", err)
			}
			return st
		}
		if m.Type != socket.TypePush || m.ServiceMethod != "" {
			if st := s.cur.Load().open(m, true); st != nil {
				return st
			}
			return nil
		}
		if m.Status != nil && m.Status.Code() != CodeShuttingDown {
			return m.Status // the peer ended the session, and said why
		}
		if m.Status == nil {
			// A peer sends its hello once its own hooks have passed: it
			// has no handshake for this one.
			s.cur.Load().heard(m)
			s.cur.Load().greetedNow()
			return ErrNoHandshake
		}
		// A shutdown notice: the peer that sent it closes the connection
		// soon, and the session then redials or ends.
	}
}

// Sealer seals the messages of one connection at its edge: Seal runs on
// each message after every write hook, just before it is written; Open on
// each one read, before any read hook. A plugin whose key exchange ran in
// the handshake (plugin/secure) sets it with SetSealer, so hook order
// does not matter to it: what a hook adds to a message on its way out is
// sealed, and what a hook reads has been opened.
//
// Control frames (hello, notices) are never sealed. handshake is true for
// the messages of WriteHandshake and ReadHandshake after SetSealer, which
// must all be sealed (plugin/auth's credential); of the others, the
// Sealer seals those marked for it, and opens those marked as sealed.
type Sealer interface {
	// Seal seals m in place. An error keeps m from being written: a CALL
	// or PUSH fails with it, a REPLY carries it instead.
	Seal(m *Message, handshake bool) error
	// Open checks and opens m in place. An error refuses m: a CALL is
	// answered with it, a REPLY completes its call with it, a PUSH is
	// dropped; ErrDiscard drops any of them unanswered.
	Open(m *Message, handshake bool) error
}

// ErrDiscard, from Sealer.Open, drops a message without an answer: a
// replay, whose original is answered.
var ErrDiscard error = status.New(CodeBadMessage, "message discarded", nil)

// SetSealer makes sl seal the messages written and read on this
// connection from now on (a redial starts without). verified says whether
// the exchange that made sl proved who the other end is, which Sealed
// reports. It is for PostDial and PostAccept hooks, which must both set
// it, at the same point of the exchange; elsewhere it fails with
// CodeFailedPrecondition.
func (s *Session) SetSealer(sl Sealer, verified bool) error {
	if !s.handshaking.Load() {
		return errNotHandshaking
	}
	s.cur.Load().sealing.Store(&sealing{sl, verified})
	return nil
}

// Sealed reports whether the connection has a Sealer from an exchange that
// proved who the other end is: a secret it seals (a later handshake
// hook's credential) reaches only that end.
func (s *Session) Sealed() bool {
	sl := s.cur.Load().sealing.Load()
	return sl != nil && sl.verified
}

type sealing struct {
	Sealer
	verified bool
}

// seal seals m if the connection has a Sealer.
func (cn *conn) seal(m *Message, handshake bool) *Status {
	if sl := cn.sealing.Load(); sl != nil {
		if err := sl.Seal(m, handshake); err != nil {
			return status.From(err, CodeInternal, "cannot seal the message")
		}
	}
	return nil
}

// open opens m if the connection has a Sealer.
func (cn *conn) open(m *Message, handshake bool) *Status {
	if sl := cn.sealing.Load(); sl != nil {
		if err := sl.Open(m, handshake); err != nil {
			return status.From(err, CodeBadMessage, "the message fails its seal")
		}
	}
	return nil
}

// ErrNoHandshake is what ReadHandshake returns when the peer says hello
// instead: its hooks have passed without a word for this one, so it most
// likely lacks the plugin this one's hook pairs with. Compare with
// errors.Is.
var ErrNoHandshake error = status.New(CodeFailedPrecondition, "the peer said hello without a handshake: does it have the matching plugin?", nil)

var errNotHandshaking = status.New(CodeFailedPrecondition, "the session serves: handshake reads and writes belong to PostDial and PostAccept hooks", nil)

// handshakeCtx bounds a handshake write by the handshake timeout.
func (s *Session) handshakeCtx() (context.Context, context.CancelFunc) {
	if t := s.peer.cfg.HandshakeTimeout; t > 0 {
		return context.WithTimeout(s.ctx, t)
	}
	return context.WithCancel(s.ctx)
}
