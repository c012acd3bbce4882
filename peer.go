package tp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// Peer is both server and client: it listens, dials and serves
// connections, and every connection becomes a Session on which either side
// may call the other. Make one with NewPeer and end it with Close.
type Peer struct {
	cfg     settings
	plugins *plugins
	router  *Router
	logger  *slog.Logger
	queue   runQueue // in front of the handler pool, which it owns
	hub     hub

	closing   atomic.Bool
	closed    context.Context // ends when Close begins
	endClosed context.CancelFunc
	inflight  gate // handlers accepted and not yet replied
	loops     sync.WaitGroup
	mu        sync.Mutex // guards listeners, starting and, with closing, new sessions
	listeners map[net.Listener]struct{}
	starting  map[*Session]struct{} // sessions in their PostDial or PostAccept hooks
	closeOnce sync.Once
	closeErr  error

	dropped atomic.Uint64 // pushes no handler took
}

// NewPeer returns a peer configured by cfg and extended by plugins. It
// checks the whole config first, and a bad one is an error naming every
// bad field (as is a PreNewPeer or PostNewPeer hook's error). The peer owns
// a handler pool: Close it when done.
func NewPeer(cfg PeerConfig, ps ...Plugin) (*Peer, error) {
	p := &Peer{listeners: map[net.Listener]struct{}{}, starting: map[*Session]struct{}{}}
	p.plugins = new(plugins).with(ps...)
	if st := run(p.plugins.preNewPeer, PreNewPeerPlugin.PreNewPeer, &cfg); st != nil {
		return nil, st
	}
	var st *Status
	if p.cfg, st = cfg.settle(); st != nil {
		return nil, st
	}
	p.logger = p.cfg.Logger
	p.router = newRouter(p.cfg.Naming, p.plugins, p.logger, p.cfg.BodyCodec)
	p.hub.init()
	p.closed, p.endClosed = context.WithCancel(context.Background())
	p.inflight.idle = make(chan struct{})
	pool, err := ants.NewPoolWithFuncGeneric(p.cfg.PoolSize, (*runQueue).drain,
		ants.WithNonblocking(true), ants.WithLogger(antsLogger{p.logger}))
	if err != nil {
		return nil, NewStatus(CodeInvalidArgument, "cannot make the handler pool", err)
	}
	p.queue.pool = pool
	if st := run(p.plugins.postNewPeer, PostNewPeerPlugin.PostNewPeer, p); st != nil {
		p.endClosed()
		pool.Release()
		return nil, st
	}
	p.spawn(p.trimIdle)
	return p, nil
}

// trimEvery is how often idle connections give back their write buffers:
// one that wrote nothing for a period holds none by the end of the next.
const trimEvery = time.Second

// trimIdle has the connections that wrote nothing lately give their write
// buffers back (their read buffers go back as soon as they are drained),
// so an idle session holds no buffer. It runs until Close begins.
func (p *Peer) trimIdle() {
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-p.closed.Done():
			return
		case <-t.C:
		}
		p.hub.each(func(s *Session) bool {
			s.cur.Load().sock.Trim()
			return true
		})
	}
}

type antsLogger struct{ l *slog.Logger }

func (a antsLogger) Printf(format string, args ...any) {
	a.l.Error("handler pool: " + fmt.Sprintf(format, args...))
}

// Logger returns the peer's logger.
func (p *Peer) Logger() *slog.Logger { return p.logger }

// Router returns the peer's root router.
func (p *Peer) Router() *Router { return p.router }

// RouteCall registers the CALL handlers of ctrl; see Router.RouteCall.
func (p *Peer) RouteCall(ctrl any, plugins ...Plugin) []string {
	return p.router.RouteCall(ctrl, plugins...)
}

// RoutePush registers the PUSH handlers of ctrl; see Router.RoutePush.
func (p *Peer) RoutePush(ctrl any, plugins ...Plugin) []string {
	return p.router.RoutePush(ctrl, plugins...)
}

// RouteCallFunc registers a CALL handler function; see Router.RouteCallFunc.
func (p *Peer) RouteCallFunc(fn any, plugins ...Plugin) string {
	return p.router.RouteCallFunc(fn, plugins...)
}

// RoutePushFunc registers a PUSH handler function; see Router.RoutePushFunc.
func (p *Peer) RoutePushFunc(fn any, plugins ...Plugin) string {
	return p.router.RoutePushFunc(fn, plugins...)
}

// RouteStream registers the stream handlers of a struct; see
// Router.RouteStream.
func (p *Peer) RouteStream(ctrl any, plugins ...Plugin) []string {
	return p.router.RouteStream(ctrl, plugins...)
}

// RouteStreamFunc registers a stream handler function; see
// Router.RouteStreamFunc.
func (p *Peer) RouteStreamFunc(fn func(StreamCtx, *Stream) error, plugins ...Plugin) string {
	return p.router.RouteStreamFunc(fn, plugins...)
}

// SubRoute returns a group of routes under prefix; see Router.SubRoute.
func (p *Peer) SubRoute(prefix string, plugins ...Plugin) *Router {
	return p.router.SubRoute(prefix, plugins...)
}

// SetUnknownCall sets the handler of unrouted CALLs; see Router.SetUnknownCall.
func (p *Peer) SetUnknownCall(fn func(UnknownCallCtx) (any, error), plugins ...Plugin) {
	p.router.SetUnknownCall(fn, plugins...)
}

// SetUnknownPush sets the handler of unrouted PUSHes; see Router.SetUnknownPush.
func (p *Peer) SetUnknownPush(fn func(UnknownPushCtx) error, plugins ...Plugin) {
	p.router.SetUnknownPush(fn, plugins...)
}

// ListenAndServe listens on PeerConfig.ListenAddr and serves it until Close,
// after which it returns nil. Addr reports the address once it listens.
func (p *Peer) ListenAndServe() error {
	ln, err := net.Listen(p.cfg.Network, p.cfg.ListenAddr)
	if err != nil {
		return NewStatus(CodeFailedPrecondition, "cannot listen on "+p.cfg.ListenAddr, err)
	}
	return p.Serve(ln)
}

// Serve accepts connections on ln, wrapped in TLS when configured, and
// serves each as a Session until Close, after which it returns nil (at
// once if Close came first). It closes ln when it returns.
func (p *Peer) Serve(ln net.Listener) error {
	if err := p.canServeTLS(); err != nil {
		ln.Close()
		return err
	}
	if p.cfg.TLS != nil {
		ln = tls.NewListener(ln, p.cfg.TLS)
	}
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		ln.Close()
		return nil // as if Close had come just after
	}
	p.listeners[ln] = struct{}{}
	p.loops.Add(1)
	p.mu.Unlock()
	defer p.loops.Done()
	defer func() {
		p.mu.Lock()
		delete(p.listeners, ln)
		p.mu.Unlock()
		ln.Close()
	}()
	if st := run(p.plugins.postListen, PostListenPlugin.PostListen, ln.Addr()); st != nil {
		return st
	}
	p.logger.Info("listening", "addr", ln.Addr().String(), "network", ln.Addr().Network())
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if p.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait, do not spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.logger.Warn("accept failed; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-p.closed.Done():
					return nil
				}
				continue
			}
			return NewStatus(CodeFailedPrecondition, "accept failed", err)
		}
		backoff = 0
		p.accept(conn)
	}
}

// trusted reports whether host, a remote address's host, is in one of the
// TrustedProxies.
func (p *Peer) trusted(host string) bool {
	if len(p.cfg.TrustedProxies) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.cfg.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// canServeTLS refuses to serve TLS without a certificate, which would fail
// every handshake rather than once, here.
func (p *Peer) canServeTLS() error {
	c := p.cfg.TLS
	if c != nil && len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		return NewStatus(CodeInvalidArgument, "PeerConfig.TLS has no certificate to serve with: set Certificates or GetCertificate (a config for dialing only needs none)", nil)
	}
	return nil
}

// Addr returns the address of a listener the peer serves, or nil when it
// serves none (yet, or any more). With ListenAddr "127.0.0.1:0" it is how
// to learn the port ListenAndServe got.
func (p *Peer) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ln := range p.listeners {
		return ln.Addr()
	}
	return nil
}

// ServeConn serves conn, wrapped in TLS when configured, as an accepted
// session, and returns it once the PostAccept hooks have passed.
func (p *Peer) ServeConn(conn net.Conn) (*Session, error) {
	if err := p.canServeTLS(); err != nil {
		conn.Close()
		return nil, err
	}
	if p.cfg.TLS != nil {
		conn = tls.Server(conn, p.cfg.TLS)
	}
	s, st := p.start(conn, "")
	if st != nil {
		return nil, st
	}
	return s, nil
}

// accept starts serving conn without holding up the accept loop: the
// PostAccept hooks, which may talk to the peer, run on its own goroutine.
func (p *Peer) accept(conn net.Conn) {
	started := p.spawn(func() {
		if _, st := p.start(conn, ""); st != nil {
			p.logger.Debug("session refused", "remote", conn.RemoteAddr().String(), "status", st)
		}
	})
	if !started {
		conn.Close()
	}
}

// spawn runs fn on a goroutine Close joins, unless Close has begun: then
// it reports false and fn does not run.
func (p *Peer) spawn(fn func()) bool {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		return false
	}
	p.loops.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.loops.Done()
		fn()
	}()
	return true
}

// Dial connects to addr and returns the session once the PostDial hooks
// have passed and the peer has said hello (every tp peer does at once, so
// an address where nothing serves tp fails here, not at the first call).
// ctx bounds all of it, as does PeerConfig.DialTimeout each attempt. With
// RedialTimes set, a first dial that reaches nobody is tried again as a
// redial is (RedialTimes times, RedialInterval apart, within ctx), and the
// session redials when its connection breaks.
func (p *Peer) Dial(ctx context.Context, addr string) (*Session, error) {
	if p.closing.Load() {
		return nil, errPeerClosing
	}
	sock, st := p.dial(ctx, addr)
	for i := 0; st != nil && (p.cfg.RedialTimes < 0 || i < p.cfg.RedialTimes); i++ {
		// Nobody answered (yet): a peer starting up, say. Refusals by a
		// peer that answered are final and come later, from startSocket.
		t := time.NewTimer(p.cfg.RedialInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, st
		case <-p.closed.Done():
			t.Stop()
			return nil, errPeerClosing
		}
		sock, st = p.dial(ctx, addr)
	}
	if st != nil {
		return nil, st
	}
	s, st := p.startSocket(sock, addr)
	if st != nil {
		return nil, st
	}
	if st := s.awaitHello(ctx); st != nil {
		s.Close()
		return nil, st
	}
	return s, nil
}

// dial connects to addr, TLS handshake included, within ctx and the dial
// timeout; Close cuts it short.
func (p *Peer) dial(ctx context.Context, addr string) (*socket.Socket, *Status) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(p.closed, cancel) // Close cuts a dial short
	defer stop()
	dialer := p.cfg.Dialer
	if dialer == nil {
		dialer = new(net.Dialer).DialContext
	}
	conn, err := dialer(ctx, p.cfg.Network, addr)
	if err != nil {
		return nil, NewStatus(CodeDialFailed, "cannot dial "+addr, err)
	}
	if p.cfg.TLS != nil {
		cfg := p.cfg.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, NewStatus(CodeDialFailed, "TLS handshake with "+addr+" failed", err)
		}
		conn = tc
	}
	return p.newSocket(conn), nil
}

func (p *Peer) newSocket(conn net.Conn) *socket.Socket {
	sock, err := socket.New(conn, p.cfg.Proto, p.cfg.Socket)
	if err != nil {
		p.logger.Warn("cannot apply socket options", "err", err)
	}
	return sock
}

func (p *Peer) start(conn net.Conn, dialAddr string) (*Session, *Status) {
	return p.startSocket(p.newSocket(conn), dialAddr)
}

// startSocket runs the session hooks and starts the read goroutine. A
// session refused on the way (by a hook, the session cap or Close) tells
// the peer why, and gets its PostDisconnect like any other.
func (p *Peer) startSocket(sock *socket.Socket, dialAddr string) (*Session, *Status) {
	s := newSession(p, sock, dialAddr)
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		sock.Close()
		return nil, errPeerClosing
	}
	if dialAddr == "" && len(p.starting) >= p.cfg.MaxHandshakes {
		p.mu.Unlock()
		sock.Close() // no notice: nothing is owed to a connection nobody knows
		return nil, NewStatus(CodeOverloaded, fmt.Sprintf("%d connections are still in their handshake, the limit (PeerConfig.MaxHandshakes)", p.cfg.MaxHandshakes), nil)
	}
	p.starting[s] = struct{}{} // Close cuts its hooks short
	p.mu.Unlock()
	// Nobody is authenticated yet: frames stay small until the session
	// serves.
	limit := sock.ReadLimit()
	sock.SetReadLimit(min(limit, p.cfg.HandshakeReadLimit))
	var st *Status
	if dialAddr != "" {
		st = p.postDial(s, false)
	} else {
		s.handshaking.Store(true)
		st = run(p.plugins.postAccept, PostAcceptPlugin.PostAccept, s)
		s.handshaking.Store(false)
	}
	sock.SetReadLimit(limit)
	p.mu.Lock()
	delete(p.starting, s)
	if st == nil && p.closing.Load() {
		st = errPeerClosing
	}
	var replaced *Session
	if st == nil {
		replaced, st = p.hub.add(s, p.cfg.MaxSessions)
	}
	if st == nil {
		p.loops.Add(1) // the read goroutine
	}
	p.mu.Unlock()
	if replaced != nil {
		replaced.replaced()
	}
	if st != nil {
		notify(s.cur.Load(), st) // the peer learns why
		s.Close()
		s.disconnected()
		return nil, st
	}
	if age := p.cfg.SessionAge; age > 0 { // counted from the connection, hooks included
		s.age = time.AfterFunc(age-time.Since(s.born), func() { s.Close() })
	}
	hello(s.cur.Load())
	go s.serve()
	return s, nil
}

func (p *Peer) postDial(s *Session, redial bool) *Status {
	s.handshaking.Store(true)
	defer s.handshaking.Store(false)
	return run(p.plugins.postDial, func(h PostDialPlugin, s *Session) error { return h.PostDial(s, redial) }, s)
}

// Session returns the session with id.
func (p *Peer) Session(id string) (*Session, bool) { return p.hub.get(id) }

// Sessions yields the sessions the peer holds: a snapshot taken when the
// loop begins, so the loop may close them.
func (p *Peer) Sessions() iter.Seq[*Session] { return p.hub.each }

// Broadcast pushes serviceMethod with arg to every session the peer holds,
// or to those keep accepts when keep is not nil. The body is encoded once.
// Each push waits as Push does, within ctx; the error joins those that
// failed, each naming its session.
func (p *Peer) Broadcast(ctx context.Context, serviceMethod string, arg any, keep func(*Session) bool, settings ...MessageSetting) error {
	m := socket.AcquireMessage()
	m.BodyCodec, m.Body = p.cfg.BodyCodec, arg
	for _, set := range settings {
		set(m)
	}
	payload, err := m.MarshalBody(nil)
	codec := m.BodyCodec
	socket.ReleaseMessage(m)
	if err != nil {
		return status.From(err, CodeInvalidArgument, "cannot encode the broadcast")
	}
	body := &socket.RawBody{Codec: codec, Bytes: payload}
	var errs []error
	for s := range p.Sessions() {
		if keep != nil && !keep(s) {
			continue
		}
		if err := s.Push(ctx, serviceMethod, body, settings...); err != nil {
			errs = append(errs, fmt.Errorf("session %s: %w", s.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// PoolUsage returns how many messages are being handled now (in their
// handler, or queued for one), and how many handlers may run at once
// (PeerConfig.PoolSize).
func (p *Peer) PoolUsage() (running, size int) { return int(p.inflight.running()), p.queue.pool.Cap() }

// CountSession returns the number of sessions.
func (p *Peer) CountSession() int { return p.hub.count() }

// Close shuts the peer down gracefully, in this order: stop accepting
// connections and new work (new CALLs are answered with
// CodeShuttingDown, sessions still in their hooks are cut); tell every
// connected peer; wait for the handlers already accepted to finish and
// reply; wait for the replies to the calls this peer made, and for peers
// that move to a new connection to leave; close every session, flushing
// what is queued; wait for the session goroutines; release the handler
// pool. Each wait shares one deadline, PeerConfig.ShutdownTimeout from
// the start, and what is cut short by it is reported in the error. Close
// is idempotent; later calls return the first one's error at once.
//
// Close waits for every handler and hook to return, so one that calls
// Close waits for itself until the deadline: call it on a goroutine of its
// own there.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() { p.closeErr = p.shutdown() })
	return p.closeErr
}

func (p *Peer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, pl := range p.plugins.preClose {
		if err := pl.PreClose(ctx); err != nil {
			p.logger.Warn("PreClose hook failed", "plugin", pl.(Plugin).Name(), "err", err)
			errs = append(errs, fmt.Errorf("tp: PreClose of %s: %w", pl.(Plugin).Name(), err))
		}
	}

	p.mu.Lock()
	p.closing.Store(true)
	lns := make([]net.Listener, 0, len(p.listeners))
	for ln := range p.listeners {
		lns = append(lns, ln)
	}
	var starting []*Session
	for s := range p.starting {
		starting = append(starting, s)
	}
	p.mu.Unlock()
	p.endClosed()
	for _, ln := range lns {
		ln.Close()
	}
	for _, s := range starting {
		s.sock().Close() // its hooks fail, and it is refused
	}
	// Tell every peer before refusing its calls: one that can redial holds
	// new calls for a new connection, which a successor process sharing
	// the listener may serve, so nothing is lost.
	p.hub.each(func(s *Session) bool {
		notify(s.cur.Load(), NewStatus(CodeShuttingDown, "peer is shutting down; it finishes the calls it has", nil))
		return true
	})
	drained := p.inflight.close(ctx)
	if !drained {
		n := p.inflight.running()
		p.logger.Warn("shutdown timeout passed with handlers still running", "running", n)
		errs = append(errs, fmt.Errorf("tp: %d handlers still running at the shutdown timeout", n))
	}
	// Every tp peer answers the notice. Those that move (redial, or leave)
	// close their connections once the calls on them are done both ways
	// (closing under them could reset late replies); for older peers that
	// stay, and those that do not answer within a short grace (not tp
	// peers, or gone), the calls this peer made are waited for. The grace is one
	// for all: a context, whose Done closes for every session.
	grace, cancelGrace := context.WithTimeout(ctx, ackGrace)
	defer cancelGrace()
	var cut int
	p.hub.each(func(s *Session) bool {
		cn := s.cur.Load()
		select {
		case <-cn.answered:
		case <-grace.Done():
		case <-s.Done():
		}
		if cn.moving.Load() {
			select {
			case <-s.Done():
			case <-ctx.Done():
			}
		} else if !cn.pending.waitEmpty(ctx) {
			cut++
		}
		s.closeWithin(ctx)
		return true
	})
	if cut > 0 {
		errs = append(errs, fmt.Errorf("tp: %d sessions closed with calls still waiting at the shutdown timeout", cut))
	}
	// The connections are closed: the read goroutines end at once, unless
	// a hook holds one.
	if !waitGroupWithin(&p.loops, ctx, closeGrace) {
		errs = append(errs, errors.New("tp: session goroutines still running after the shutdown timeout: a hook that does not return, or Close called from one?"))
	}
	// With every handler done, the pool's workers are idle and go at once;
	// one still in a handler is not waited for past the deadline.
	poolWait := remaining(ctx)
	if drained {
		poolWait += closeGrace
	}
	if err := p.queue.pool.ReleaseTimeout(poolWait); err != nil {
		p.logger.Warn("handler pool did not drain", "err", err)
		errs = append(errs, fmt.Errorf("tp: handler pool did not drain: %w", err))
	}
	return errors.Join(errs...)
}

// ackGrace is how long Close waits for a peer to answer its shutdown
// notice before it goes on without the answer.
const ackGrace = 250 * time.Millisecond

// closeGrace is how long past the shutdown timeout Close waits for
// goroutines it has already told to end: closing a connection ends its
// read goroutine at once, so this bounds only a hook that hangs.
const closeGrace = time.Second

func remaining(ctx context.Context) time.Duration {
	d, _ := ctx.Deadline()
	return max(time.Until(d), 0)
}

// waitGroupWithin waits for wg until ctx's deadline plus extra.
func waitGroupWithin(wg *sync.WaitGroup, ctx context.Context, extra time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(remaining(ctx) + extra)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// gate counts handlers in flight and, once closed, admits no more.
type gate struct {
	n    atomic.Int64 // in flight, plus gateClosed once closed
	idle chan struct{}
	once sync.Once
}

const gateClosed = 1 << 62

func (g *gate) enter() bool {
	if g.n.Add(1)&gateClosed != 0 {
		g.leave()
		return false
	}
	return true
}

func (g *gate) leave() {
	if g.n.Add(-1) == gateClosed {
		g.once.Do(func() { close(g.idle) })
	}
}

func (g *gate) running() int64 { return g.n.Load() &^ gateClosed }

// close admits no more and waits until ctx ends for those in flight.
func (g *gate) close(ctx context.Context) bool {
	if g.n.Add(gateClosed) == gateClosed {
		g.once.Do(func() { close(g.idle) })
	}
	select {
	case <-g.idle:
		return true
	case <-ctx.Done():
		return false
	}
}
