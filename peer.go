package tp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
	"github.com/seed-a9a850dd/tp/socket"
)

// Peer is both server and client: it listens, dials and serves
// connections, and every connection becomes a Session on which either side
// may call the other. Make one with NewPeer and end it with Close.
type Peer struct {
	cfg     settings
	initErr *Status // a bad config, reported by Serve and Dial
	plugins *plugins
	router  *Router
	logger  *slog.Logger
	queue   runQueue // in front of the handler pool, which it owns
	hub     hub

	closing   atomic.Bool
	done      chan struct{} // closed when Close begins
	inflight  gate          // handlers accepted and not yet replied
	loops     sync.WaitGroup
	mu        sync.Mutex // guards listeners and, with closing, new sessions
	listeners map[net.Listener]struct{}
	closeOnce sync.Once
}

// NewPeer returns a peer configured by cfg and extended by plugins. A bad
// config is reported by the first Serve, ListenAndServe, ServeConn or Dial.
// The peer owns a handler pool: Close it when done.
func NewPeer(cfg PeerConfig, ps ...Plugin) *Peer {
	p := &Peer{done: make(chan struct{}), listeners: map[net.Listener]struct{}{}}
	p.plugins = new(plugins).with(ps...)
	for _, h := range p.plugins.preNewPeer {
		if st := h.PreNewPeer(&cfg); st != nil && p.initErr == nil {
			p.initErr = st
		}
	}
	var st *Status
	p.cfg, st = cfg.settle()
	if p.initErr == nil {
		p.initErr = st
	}
	p.logger = p.cfg.Logger
	p.router = newRouter(p.cfg.RPCStyle, p.plugins)
	p.hub.m = map[string]*Session{}
	p.inflight.idle = make(chan struct{})
	pool, err := ants.NewPoolWithFuncGeneric(p.cfg.PoolSize, (*runQueue).drain,
		ants.WithNonblocking(true), ants.WithLogger(antsLogger{p.logger}))
	if err != nil {
		panic(fmt.Sprintf("tp: cannot make the handler pool: %v", err)) // only for a size <= 0, which settle prevents
	}
	p.queue.pool = pool
	if p.initErr == nil {
		p.initErr = run(p.plugins.postNewPeer, PostNewPeerPlugin.PostNewPeer, p)
	}
	return p
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

// SubRoute returns a group of routes under prefix; see Router.SubRoute.
func (p *Peer) SubRoute(prefix string, plugins ...Plugin) *Router {
	return p.router.SubRoute(prefix, plugins...)
}

// SetUnknownCall sets the handler of unrouted CALLs; see Router.SetUnknownCall.
func (p *Peer) SetUnknownCall(fn func(UnknownCallCtx) (any, *Status), plugins ...Plugin) {
	p.router.SetUnknownCall(fn, plugins...)
}

// SetUnknownPush sets the handler of unrouted PUSHes; see Router.SetUnknownPush.
func (p *Peer) SetUnknownPush(fn func(UnknownPushCtx) *Status, plugins ...Plugin) {
	p.router.SetUnknownPush(fn, plugins...)
}

// ListenAndServe listens on PeerConfig.ListenAddr and serves it until Close,
// after which it returns nil.
func (p *Peer) ListenAndServe() *Status {
	if p.initErr != nil {
		return p.initErr
	}
	ln, err := net.Listen(p.cfg.Network, p.cfg.ListenAddr)
	if err != nil {
		return NewStatus(CodeFailedPrecondition, "cannot listen on "+p.cfg.ListenAddr, err)
	}
	return p.Serve(ln)
}

// Serve accepts connections on ln, wrapped in TLS when configured, and
// serves each as a Session until Close, after which it returns nil. It
// closes ln when it returns.
func (p *Peer) Serve(ln net.Listener) *Status {
	if p.initErr != nil {
		ln.Close()
		return p.initErr
	}
	if p.cfg.TLS != nil {
		ln = tls.NewListener(ln, p.cfg.TLS)
	}
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		ln.Close()
		return errPeerClosing
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
				case <-p.done:
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

// ServeConn serves conn, wrapped in TLS when configured, as an accepted
// session, and returns it once the PostAccept hooks have passed.
func (p *Peer) ServeConn(conn net.Conn) (*Session, *Status) {
	if p.initErr != nil {
		conn.Close()
		return nil, p.initErr
	}
	if p.cfg.TLS != nil {
		conn = tls.Server(conn, p.cfg.TLS)
	}
	return p.start(conn, "")
}

// accept starts serving conn without holding up the accept loop: the
// PostAccept hooks, which may talk to the peer, run on its own goroutine.
func (p *Peer) accept(conn net.Conn) {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		conn.Close()
		return
	}
	p.loops.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.loops.Done()
		if _, st := p.start(conn, ""); st != nil {
			p.logger.Debug("session refused", "remote", conn.RemoteAddr().String(), "status", st)
		}
	}()
}

// Dial connects to addr and returns the session once the PostDial hooks
// have passed. With RedialTimes set, the session redials when its
// connection breaks.
func (p *Peer) Dial(addr string) (*Session, *Status) {
	if p.initErr != nil {
		return nil, p.initErr
	}
	if p.closing.Load() {
		return nil, errPeerClosing
	}
	sock, st := p.dial(addr)
	if st != nil {
		return nil, st
	}
	return p.startSocket(sock, addr)
}

func (p *Peer) dial(addr string) (*socket.Socket, *Status) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DialTimeout)
	defer cancel()
	go func() { // Close cuts a dial short
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, p.cfg.Network, addr)
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

// startSocket runs the session hooks and starts the read goroutine.
func (p *Peer) startSocket(sock *socket.Socket, dialAddr string) (*Session, *Status) {
	s := newSession(p, sock, dialAddr)
	var st *Status
	if dialAddr != "" {
		st = p.postDial(s, false)
	} else {
		s.handshaking.Store(true)
		st = run(p.plugins.postAccept, PostAcceptPlugin.PostAccept, s)
		s.handshaking.Store(false)
	}
	if st != nil {
		s.closeWith(st) // the peer learns why
		s.disconnected()
		return nil, st
	}
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		s.Close()
		return nil, errPeerClosing
	}
	if max := p.cfg.MaxSessions; max > 0 && p.hub.count() >= max {
		p.mu.Unlock()
		st := NewStatus(CodeOverloaded, fmt.Sprintf("peer holds %d sessions, its limit; try again later", max), nil)
		if dialAddr == "" {
			s.closeWith(st) // the dialer learns why
		} else {
			s.Close()
		}
		s.disconnected()
		return nil, st
	}
	p.loops.Add(2) // the hello and serve goroutines below
	p.hub.add(s)
	p.mu.Unlock()
	if age := p.cfg.SessionAge; age > 0 {
		s.age = time.AfterFunc(age, func() { s.Close() })
	}
	// The hello goes out on its own goroutine: on a synchronous conn such as
	// net.Pipe a write waits for the other end to read, and that end may be
	// sending its own hello first. Close joins it.
	go func() {
		defer p.loops.Done()
		s.hello()
	}()
	go s.serve()
	return s, nil
}

func (p *Peer) postDial(s *Session, redial bool) *Status {
	s.handshaking.Store(true)
	defer s.handshaking.Store(false)
	for _, h := range p.plugins.postDial {
		if st := h.PostDial(s, redial); st != nil {
			return st
		}
	}
	return nil
}

// Session returns the session with id.
func (p *Peer) Session(id string) (*Session, bool) { return p.hub.get(id) }

// RangeSession calls fn for each session until fn returns false.
func (p *Peer) RangeSession(fn func(*Session) bool) { p.hub.each(fn) }

// PoolUsage returns how many messages are being handled now (in their
// handler, or queued for one), and how many handlers may run at once
// (PeerConfig.PoolSize).
func (p *Peer) PoolUsage() (running, size int) { return int(p.inflight.running()), p.queue.pool.Cap() }

// CountSession returns the number of sessions.
func (p *Peer) CountSession() int { return p.hub.count() }

// Close shuts the peer down gracefully, in this order: stop accepting
// connections and new work (new CALLs are answered with
// CodeShuttingDown); wait up to ShutdownTimeout for the handlers already
// accepted to finish and reply; close every session, flushing what is
// queued; wait for the session goroutines; release the handler pool. Close
// is idempotent; later calls return at once.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing.Store(true)
		lns := make([]net.Listener, 0, len(p.listeners))
		for ln := range p.listeners {
			lns = append(lns, ln)
		}
		p.mu.Unlock()
		close(p.done)
		for _, ln := range lns {
			ln.Close()
		}
		// Tell every peer before refusing its calls: one that can redial
		// holds new calls for a new connection, which a successor process
		// sharing the listener may serve, so nothing is lost.
		p.hub.each(func(s *Session) bool {
			s.notify(NewStatus(CodeShuttingDown, "peer is shutting down; it finishes the calls it has", nil))
			return true
		})
		deadline := time.Now().Add(p.cfg.ShutdownTimeout)
		if !p.inflight.close(p.cfg.ShutdownTimeout) {
			p.logger.Warn("shutdown timeout passed with handlers still running", "running", p.inflight.running())
		}
		// Every tp peer answers the notice. Those that move close their
		// connections once their calls are answered (closing under them
		// could reset late replies); those that stay are closed now. A
		// peer that does not answer gets a short grace, one for all.
		// Contexts, not timers: their Done channels close for every session.
		wait, cancelWait := context.WithDeadline(context.Background(), deadline)
		defer cancelWait()
		grace, cancelGrace := context.WithTimeout(wait, ackGrace)
		defer cancelGrace()
		p.hub.each(func(s *Session) bool {
			select {
			case <-s.answered:
				if s.moving.Load() {
					select {
					case <-s.ctx.Done():
					case <-wait.Done():
					}
				}
			case <-grace.Done(): // no answer: not a tp peer, or gone
			case <-s.ctx.Done():
			}
			s.Close()
			return true
		})
		p.loops.Wait()
		if err := p.queue.pool.ReleaseTimeout(p.cfg.ShutdownTimeout); err != nil {
			p.logger.Warn("handler pool did not drain", "err", err)
		}
	})
	return nil
}

// ackGrace is how long Close waits for a peer to answer its shutdown
// notice before it closes that peer's connection.
const ackGrace = 250 * time.Millisecond

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

// close admits no more and waits up to timeout for those in flight.
func (g *gate) close(timeout time.Duration) bool {
	if g.n.Add(gateClosed) == gateClosed {
		g.once.Do(func() { close(g.idle) })
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.idle:
		return true
	case <-t.C:
		return false
	}
}

// hub indexes a peer's sessions by ID.
type hub struct {
	mu sync.RWMutex
	m  map[string]*Session
}

// add indexes s. A second session dialed to the same address gets
// "remote|local" as its ID, so it does not replace the first.
func (h *hub) add(s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, taken := h.m[s.ID()]; taken {
		id := s.ID() + "|" + s.LocalAddr().String()
		s.id.Store(&id)
	}
	h.m[s.ID()] = s
}

func (h *hub) remove(s *Session) {
	h.mu.Lock()
	if h.m[s.ID()] == s {
		delete(h.m, s.ID())
	}
	h.mu.Unlock()
}

func (h *hub) rename(s *Session, id string) {
	h.mu.Lock()
	if h.m[s.ID()] == s {
		delete(h.m, s.ID())
	}
	prev := h.m[id]
	s.id.Store(&id)
	h.m[id] = s
	h.mu.Unlock()
	if prev != nil && prev != s {
		prev.Close()
	}
}

func (h *hub) get(id string) (*Session, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.m[id]
	return s, ok
}

func (h *hub) count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.m)
}

// each calls fn on a snapshot, so fn may close sessions.
func (h *hub) each(fn func(*Session) bool) {
	h.mu.RLock()
	all := make([]*Session, 0, len(h.m))
	for _, s := range h.m {
		all = append(all, s)
	}
	h.mu.RUnlock()
	for _, s := range all {
		if !fn(s) {
			return
		}
	}
}
