package discovery

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// endpoint is one server as the client keeps it: its sessions, its
// breaker, and the calls in flight to it.
type endpoint struct {
	c        *Client
	info     atomic.Pointer[Endpoint]
	br       *breaker
	pending  atomic.Int64
	idle     atomic.Pointer[chan struct{}] // closed, and replaced, when pending falls to 0 after the endpoint left
	sessions atomic.Pointer[[]*tp.Session] // connected, and not leaving
	rr       atomic.Uint32
	dialing  atomic.Int32 // sessions still on their first dial
	ctx      context.Context
	cancel   context.CancelFunc // the endpoint left the resolver's set

	mu  sync.Mutex // for changes of sessions
	all []*tp.Session
}

func newEndpoint(c *Client, info Endpoint) *endpoint {
	e := &endpoint{c: c, br: newBreaker(c.cfg.Breaker)}
	idle := make(chan struct{})
	e.idle.Store(&idle)
	e.dialing.Store(int32(c.cfg.PoolSize))
	e.info.Store(&info)
	e.sessions.Store(&[]*tp.Session{})
	e.ctx, e.cancel = context.WithCancel(c.ctx)
	return e
}

// session returns one of the endpoint's connected sessions, in turn, or
// nil.
func (e *endpoint) session() *tp.Session {
	ss := *e.sessions.Load()
	for range ss {
		s := ss[int(e.rr.Add(1))%len(ss)]
		if s.Health() {
			return s
		}
	}
	return nil
}

func (e *endpoint) connected() bool { return len(*e.sessions.Load()) > 0 }

// tried reports whether every session's first dial has ended, either way.
func (e *endpoint) tried() bool { return e.dialing.Load() <= 0 }

// add makes s one of the sessions calls may use. An endpoint that had none
// starts with a fresh breaker: it is a new server process, or the same one
// back, and what the old connection suffered says nothing of it.
func (e *endpoint) add(s *tp.Session) {
	e.mu.Lock()
	if len(*e.sessions.Load()) == 0 {
		e.br.reset(time.Now())
	}
	e.all = append(e.all, s)
	e.publish()
	e.mu.Unlock()
	e.c.refresh()
}

// drop takes s out of the sessions calls may use: it ended, or its peer
// said it is shutting down (the peer closes it once its calls are done).
func (e *endpoint) drop(s *tp.Session) {
	e.mu.Lock()
	for i, x := range e.all {
		if x == s {
			e.all = append(e.all[:i:i], e.all[i+1:]...)
			break
		}
	}
	e.publish()
	e.mu.Unlock()
	e.c.refresh()
}

// publish makes e.all what callers see. Called with mu held.
func (e *endpoint) publish() {
	ss := make([]*tp.Session, len(e.all))
	copy(ss, e.all)
	e.sessions.Store(&ss)
}

// keep holds one of the endpoint's PoolSize sessions: it dials, waits for
// the session to end, and dials again, backing off while dials fail, until
// the endpoint leaves the set or the client closes.
func (e *endpoint) keep() {
	defer e.c.wg.Done()
	first := true
	firstDone := func() {
		if first {
			first = false
			e.dialing.Add(-1)
		}
	}
	defer firstDone()
	var pause time.Duration
	for e.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(e.ctx, e.c.cfg.DialTimeout)
		s, err := e.c.peer.Dial(ctx, e.info.Load().Addr)
		cancel()
		if err != nil {
			if e.ctx.Err() == nil {
				e.c.logger().Debug("dial failed", "service", e.c.cfg.Service, "addr", e.info.Load().Addr, "err", err)
			}
			firstDone()
			e.c.refresh() // callers waiting for a first dial learn it failed
			pause = min(max(2*pause, 50*time.Millisecond), e.c.cfg.MaxBackoff)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-e.ctx.Done():
				t.Stop()
			}
			continue
		}
		pause = 0
		e.add(s) // before firstDone: a caller that sees every first dial done sees this session too
		firstDone()
		select {
		case <-s.Done():
			e.drop(s)
		case <-e.ctx.Done():
			e.drop(s)
			e.closeWhenIdle(s)
			return
		}
	}
}

// done ends a call to the endpoint.
func (e *endpoint) done() {
	if e.pending.Add(-1) == 0 && e.ctx.Err() != nil {
		next := make(chan struct{})
		close(*e.idle.Swap(&next))
	}
}

// closeWhenIdle closes s once the calls in flight to the endpoint are done,
// or after DialTimeout: the endpoint left the set, but what it was already
// asked is answered.
func (e *endpoint) closeWhenIdle(s *tp.Session) {
	t := time.NewTimer(e.c.cfg.DialTimeout)
	defer t.Stop()
	for {
		idle := *e.idle.Load() // before the count: a fall to 0 after it closes idle
		if e.pending.Load() == 0 {
			break
		}
		select {
		case <-idle:
		case <-s.Done():
			return
		case <-t.C:
			s.Close()
			return
		}
	}
	s.Close()
}
