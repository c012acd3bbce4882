package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
	"google.golang.org/protobuf/proto"
)

// FailMode says what a call does when an attempt fails. In every mode, an
// attempt that provably never ran (tp.CallCmd.NeverRan: never sent, or
// refused by a peer that is shutting down) or that the peer refused as
// overloaded is sent to another endpoint: that is always safe, so a
// server that dies or leaves costs no call that had not reached it.
type FailMode int

const (
	// FailFast returns the failure of an attempt that may have run.
	FailFast FailMode = iota
	// Failover sends an Idempotent route's call to another endpoint when
	// an attempt that may have run failed for the endpoint's sake (its
	// connection broke or it could not take the call), up to Retries
	// times. Other routes fail fast.
	Failover
	// Failtry is Failover to the same endpoint, while it is connected.
	Failtry
	// Backup sends an Idempotent route's call to a second endpoint too when
	// the first has not answered within BackupDelay (or failed), and takes
	// the first good reply; the other attempt is canceled. Both may run.
	// Other routes fail fast.
	Backup
)

func (m FailMode) String() string {
	switch m {
	case FailFast:
		return "fail-fast"
	case Failover:
		return "failover"
	case Failtry:
		return "failtry"
	case Backup:
		return "backup"
	}
	return fmt.Sprintf("FailMode(%d)", int(m))
}

// Config configures a Client. Only Service is required.
type Config struct {
	// Service is the name the resolver knows the servers by.
	Service string
	// Selector picks an endpoint per call; nil means RoundRobin.
	Selector Selector
	// FailMode is the calls' mode; WithFailMode sets it for one call.
	FailMode FailMode
	// Retries bounds Failover and Failtry: attempts after the first; 0
	// means 2.
	Retries int
	// Idempotent reports whether a route may run twice (a read, a put of
	// the same value): only such calls are retried after they may have
	// run, or backed up. nil means none is.
	Idempotent func(serviceMethod string) bool
	// BackupDelay is how long Backup waits for the first attempt; 0
	// means 10 ms.
	BackupDelay time.Duration
	// PoolSize is the number of sessions per endpoint, for calls that
	// move much data; 0 means 1.
	PoolSize int
	// DialTimeout bounds a dial, and how long a call waits for endpoints
	// that are being dialed for the first time; 0 means 5 s.
	DialTimeout time.Duration
	// MaxBackoff bounds the pause between dials of an endpoint that cannot
	// be reached (the pause doubles from 50 ms); 0 means 1 s.
	MaxBackoff time.Duration
	// Breaker sets when an endpoint is ejected for failing.
	Breaker BreakerConfig
}

func (c Config) settle() (Config, error) {
	if c.Service == "" {
		return c, errors.New("discovery: Config.Service is empty: name the service to call")
	}
	if c.FailMode < FailFast || c.FailMode > Backup {
		return c, fmt.Errorf("discovery: Config.FailMode %d is not a FailMode", c.FailMode)
	}
	if c.Selector == nil {
		c.Selector = RoundRobin()
	}
	if c.Retries <= 0 {
		c.Retries = 2
	}
	if c.BackupDelay <= 0 {
		c.BackupDelay = 10 * time.Millisecond
	}
	c.PoolSize = max(c.PoolSize, 1)
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Second
	}
	c.Breaker = c.Breaker.settle()
	return c, nil
}

// Client calls a service's servers, as a resolver finds them, through
// sessions of a Peer: it keeps PoolSize sessions to each endpoint, spreads
// calls by its Selector, steps around endpoints that fail or leave, and
// follows the resolver as servers come and go. The servers may call the
// client's peer back on those sessions, as on any. It is safe for
// concurrent use.
type Client struct {
	peer   *tp.Peer
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	up       atomic.Pointer[[]*endpoint] // connected endpoints, by address
	resolved atomic.Bool                 // the resolver gave its first set

	mu      sync.Mutex
	eps     map[string]*endpoint
	changed atomic.Pointer[chan struct{}] // closed when up or an endpoint's state changes, then replaced
}

// NewClient starts a client of cfg.Service on peer, following r. It
// returns at once; calls wait for the first endpoints, up to DialTimeout.
func NewClient(peer *tp.Peer, r Resolver, cfg Config) (*Client, error) {
	cfg, err := cfg.settle()
	if err != nil {
		return nil, err
	}
	c := &Client{peer: peer, cfg: cfg, eps: map[string]*endpoint{}}
	changed := make(chan struct{})
	c.changed.Store(&changed)
	c.up.Store(&[]*endpoint{})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	sets, err := r.Watch(c.ctx, cfg.Service)
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("discovery: watching %q: %w", cfg.Service, err)
	}
	c.wg.Add(1)
	go c.follow(sets)
	return c, nil
}

func (c *Client) logger() *slog.Logger { return c.peer.Logger() }

// follow applies each set the resolver sends.
func (c *Client) follow(sets <-chan []Endpoint) {
	defer c.wg.Done()
	for set := range sets {
		c.apply(set)
	}
}

// apply makes set the client's endpoints: new ones are dialed, gone ones
// take no more calls and are closed once their calls are done.
func (c *Client) apply(set []Endpoint) {
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return
	}
	keep := make(map[string]bool, len(set))
	for _, info := range set {
		if info.Addr == "" || keep[info.Addr] {
			continue
		}
		keep[info.Addr] = true
		if e, ok := c.eps[info.Addr]; ok {
			if !e.info.Load().equal(info) {
				e.info.Store(&info)
			}
			continue
		}
		e := newEndpoint(c, info)
		c.eps[info.Addr] = e
		c.wg.Add(c.cfg.PoolSize)
		for range c.cfg.PoolSize {
			go e.keep()
		}
	}
	for addr, e := range c.eps {
		if !keep[addr] {
			delete(c.eps, addr)
			e.cancel()
		}
	}
	c.resolved.Store(true)
	c.mu.Unlock()
	c.refresh()
}

// refresh rebuilds the connected set callers pick from, and wakes callers
// waiting for a change.
func (c *Client) refresh() {
	c.mu.Lock()
	defer c.mu.Unlock()
	up := make([]*endpoint, 0, len(c.eps))
	for _, e := range c.eps {
		if e.connected() {
			up = append(up, e)
		}
	}
	slices.SortFunc(up, func(a, b *endpoint) int { return cmp.Compare(a.info.Load().Addr, b.info.Load().Addr) })
	c.up.Store(&up)
	next := make(chan struct{})
	close(*c.changed.Swap(&next))
}

// waitable reports whether a caller finding no endpoint should wait: the
// resolver has not answered yet, or an endpoint's first dial is under way.
func (c *Client) waitable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.resolved.Load() {
		return true
	}
	for _, e := range c.eps {
		if !e.tried() {
			return true
		}
	}
	return false
}

// changes returns the channel closed at the next change of the connected
// set.
func (c *Client) changes() <-chan struct{} { return *c.changed.Load() }

var errClosed = tp.NewStatus(tp.CodeConnClosed, "discovery: the client is closed", nil)

// picking is a pick's scratch space, pooled.
type picking struct {
	cands []Candidate
	eps   []*endpoint
}

var pickings = sync.Pool{New: func() any { return new(picking) }}

// pick chooses an endpoint for r, and one of its sessions, leaving out
// the endpoints in avoid, taking prefer when it can. probe says the call
// is its breaker's probe. It waits for endpoints being dialed for the
// first time, within ctx and DialTimeout.
func (c *Client) pick(r *Request, avoid []*endpoint, prefer *endpoint) (e *endpoint, s *tp.Session, probe bool, err error) {
	var waitUntil time.Time
	pk := pickings.Get().(*picking)
	defer pickings.Put(pk)
	var skip []*endpoint // claimed by another caller's probe, or no session after all
	for {
		if c.closed.Load() {
			return nil, nil, false, errClosed
		}
		changed := c.changes() // before the set is read: a change after it wakes the wait below
		now := time.Now()
		pk.cands, pk.eps = pk.cands[:0], pk.eps[:0]
		for _, x := range *c.up.Load() {
			if slices.Contains(avoid, x) || slices.Contains(skip, x) || !x.br.available(now) {
				continue
			}
			if x == prefer {
				pk.cands, pk.eps = append(pk.cands[:0], Candidate{Endpoint: *x.info.Load(), Pending: int(x.pending.Load())}), append(pk.eps[:0], x)
				break
			}
			pk.cands = append(pk.cands, Candidate{Endpoint: *x.info.Load(), Pending: int(x.pending.Load())})
			pk.eps = append(pk.eps, x)
		}
		if len(pk.eps) > 0 {
			i := 0
			if len(pk.eps) > 1 {
				i = c.cfg.Selector.Select(r, pk.cands)
				if i < 0 || i >= len(pk.eps) {
					return nil, nil, false, tp.NewStatus(tp.CodeInternal, fmt.Sprintf("discovery: the selector chose %d of %d candidates", i, len(pk.eps)), nil)
				}
			}
			e = pk.eps[i]
			clear(pk.cands) // no endpoint's meta pinned by the pool
			ok, probe := e.br.claim(now)
			if !ok {
				skip = append(skip, e)
				continue
			}
			if s = e.session(); s == nil {
				if probe {
					e.br.release() // no call was made
				}
				skip = append(skip, e)
				continue
			}
			return e, s, probe, nil
		}
		select {
		case <-changed:
			skip = skip[:0]
			continue // the set changed since it was read
		default:
		}
		if !c.waitable() {
			return nil, nil, false, c.noEndpoint(avoid)
		}
		if waitUntil.IsZero() {
			waitUntil = now.Add(c.cfg.DialTimeout)
		}
		skip = skip[:0]
		t := time.NewTimer(max(waitUntil.Sub(now), 0))
		select {
		case <-changed:
			t.Stop()
		case <-t.C:
			return nil, nil, false, c.noEndpoint(avoid)
		case <-r.Ctx.Done():
			t.Stop()
			code := tp.CodeCanceled
			if errors.Is(r.Ctx.Err(), context.DeadlineExceeded) {
				code = tp.CodeTimeout
			}
			return nil, nil, false, tp.NewStatus(code, "discovery: waiting for an endpoint of "+c.cfg.Service, context.Cause(r.Ctx))
		case <-c.ctx.Done():
			t.Stop()
		}
	}
}

// noEndpoint says why no endpoint could take a call.
func (c *Client) noEndpoint(avoid []*endpoint) error {
	c.mu.Lock()
	known, up, ejected := len(c.eps), 0, 0
	for _, e := range c.eps {
		if e.connected() {
			up++
			if e.br.current() != closed {
				ejected++
			}
		}
	}
	c.mu.Unlock()
	msg := fmt.Sprintf("discovery: no endpoint of %q can take the call: %d known, %d connected, %d ejected by their breakers", c.cfg.Service, known, up, ejected)
	if len(avoid) > 0 {
		msg += fmt.Sprintf(", %d tried already", len(avoid))
	}
	return tp.NewStatus(tp.CodeDialFailed, msg, nil)
}

type failModeKey struct{}

// WithFailMode returns a context whose calls through a Client use mode
// rather than the client's.
func WithFailMode(ctx context.Context, mode FailMode) context.Context {
	return context.WithValue(ctx, failModeKey{}, mode)
}

// Call calls serviceMethod on an endpoint of the service, as Session.Call
// does, stepping to another endpoint as the FailMode says. The error is
// the last attempt's (a *tp.Status: tp.CodeOf reads its code), or, if no
// endpoint could take the call, a CodeDialFailed status saying why.
func (c *Client) Call(ctx context.Context, serviceMethod string, arg, result any, settings ...tp.MessageSetting) error {
	mode := c.cfg.FailMode
	if m, ok := ctx.Value(failModeKey{}).(FailMode); ok {
		mode = m
	}
	idempotent := c.cfg.Idempotent != nil && c.cfg.Idempotent(serviceMethod)
	if !idempotent {
		mode = FailFast
	}
	if mode == Backup {
		return c.backup(ctx, serviceMethod, arg, result, settings)
	}
	_, err := c.call(ctx, serviceMethod, arg, result, settings, mode, nil, nil)
	return err
}

// call makes attempts until one is final. picked, when not nil, learns
// each endpoint tried.
func (c *Client) call(ctx context.Context, serviceMethod string, arg, result any, settings []tp.MessageSetting, mode FailMode, avoid []*endpoint, picked func(*endpoint)) (*endpoint, error) {
	r := Request{Ctx: ctx, ServiceMethod: serviceMethod, Arg: arg}
	var prefer *endpoint
	retries, resends := 0, 0
	for {
		e, s, probe, err := c.pick(&r, avoid, prefer)
		if err != nil && len(avoid) > 0 && tp.CodeOf(err) == tp.CodeDialFailed {
			// Every endpoint was tried: try again among them all.
			avoid = avoid[:0]
			e, s, probe, err = c.pick(&r, nil, prefer)
		}
		if err != nil {
			return nil, err
		}
		if picked != nil {
			picked(e)
		}
		e.pending.Add(1)
		cmd := s.Call(ctx, serviceMethod, arg, result, settings...)
		e.done()
		err = cmd.Err()
		code := tp.CodeOf(err)
		e.br.record(time.Now(), endpointFailed(code), probe)
		if err == nil || ctx.Err() != nil {
			return e, err
		}
		refused := cmd.NeverRan() || code == tp.CodeOverloaded
		if code == tp.CodeShuttingDown && cmd.NeverRan() {
			e.drop(s) // its peer closes it once the calls on it are done
		}
		switch {
		case refused && resends < c.maxResends():
			resends++
			avoid, prefer = append(avoid, e), nil
		case mode != FailFast && retries < c.cfg.Retries && retryable(code):
			retries++
			if mode == Failtry {
				prefer = e
			} else {
				avoid, prefer = append(avoid, e), nil
			}
		default:
			return e, err
		}
	}
}

// maxResends bounds the resends of calls that never ran: each endpoint
// once, and one more for a set that changed meanwhile.
func (c *Client) maxResends() int { return len(*c.up.Load()) + 1 }

// endpointFailed reports whether a call's failure counts against its
// endpoint's breaker.
func endpointFailed(code tp.Code) bool {
	switch code {
	case tp.CodeConnClosed, tp.CodeWriteFailed, tp.CodeDialFailed, tp.CodeTimeout, tp.CodeOverloaded, tp.CodeInternal:
		return true
	}
	return false
}

// retryable reports whether an Idempotent call that may have run should be
// tried again for failing with code: the endpoint, not the request, failed.
func retryable(code tp.Code) bool {
	switch code {
	case tp.CodeConnClosed, tp.CodeWriteFailed, tp.CodeDialFailed, tp.CodeOverloaded, tp.CodeShuttingDown, tp.CodeInternal:
		return true
	}
	return false
}

// backup runs the call on one endpoint and, if it has not answered within
// BackupDelay or failed, on another too; the first good reply wins. It
// returns once both attempts have ended: the loser is canceled, which
// ends it at once.
func (c *Client) backup(ctx context.Context, serviceMethod string, arg, result any, settings []tp.MessageSetting) error {
	ctx, cancel := context.WithCancel(ctx)
	type outcome struct {
		val any
		err error
	}
	done := make(chan outcome, 2)
	running := 0
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-done
		}
	}()
	var first atomic.Pointer[endpoint]
	start := func(avoid []*endpoint, picked func(*endpoint)) {
		val := fresh(result)
		running++
		go func() {
			_, err := c.call(ctx, serviceMethod, arg, val, settings, FailFast, avoid, picked)
			done <- outcome{val, err}
		}()
	}
	start(nil, func(e *endpoint) { first.Store(e) })
	t := time.NewTimer(c.cfg.BackupDelay)
	defer t.Stop()
	var last error
	backedUp := false
	for running > 0 {
		select {
		case <-t.C:
		case o := <-done:
			running--
			if o.err == nil {
				assign(result, o.val)
				return nil
			}
			last = o.err
			if ctx.Err() != nil || !retryable(tp.CodeOf(o.err)) {
				return o.err // the caller's end, or the handler's answer
			}
		}
		if !backedUp {
			backedUp = true
			var avoid []*endpoint
			if e := first.Load(); e != nil {
				avoid = []*endpoint{e}
			}
			start(avoid, nil)
		}
	}
	return last
}

// fresh returns a new value of result's type, for an attempt of its own.
func fresh(result any) any {
	if result == nil {
		return nil
	}
	t := reflect.TypeOf(result)
	if t.Kind() != reflect.Pointer {
		return result // Session.Call refuses it, saying why
	}
	return reflect.New(t.Elem()).Interface()
}

// assign copies a winning attempt's result into the caller's.
func assign(dst, src any) {
	if dst == nil || src == nil || reflect.TypeOf(dst).Kind() != reflect.Pointer {
		return
	}
	if pm, ok := dst.(proto.Message); ok {
		proto.Reset(pm)
		proto.Merge(pm, src.(proto.Message))
		return
	}
	reflect.ValueOf(dst).Elem().Set(reflect.ValueOf(src).Elem())
}

// Push sends serviceMethod to an endpoint of the service, as Session.Push
// does: at most once, with no retry, since a push that may have been
// written cannot be known not to have run. A session found closed before
// the push is sent is skipped.
func (c *Client) Push(ctx context.Context, serviceMethod string, arg any, settings ...tp.MessageSetting) error {
	r := Request{Ctx: ctx, ServiceMethod: serviceMethod, Arg: arg}
	e, s, probe, err := c.pick(&r, nil, nil)
	if err != nil {
		return err
	}
	err = s.Push(ctx, serviceMethod, arg, settings...)
	e.br.record(time.Now(), err != nil && endpointFailed(tp.CodeOf(err)), probe)
	return err
}

// Broadcast pushes serviceMethod to every connected endpoint, breakers
// aside, and returns the failures joined, each naming its endpoint.
func (c *Client) Broadcast(ctx context.Context, serviceMethod string, arg any, settings ...tp.MessageSetting) error {
	if c.closed.Load() {
		return errClosed
	}
	var errs []error
	for _, e := range *c.up.Load() {
		s := e.session()
		if s == nil {
			continue
		}
		if err := s.Push(ctx, serviceMethod, arg, settings...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.info.Load().Addr, err))
		}
	}
	return errors.Join(errs...)
}

// Endpoints returns the endpoints the resolver gave last, by address.
func (c *Client) Endpoints() []Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]Endpoint, 0, len(c.eps))
	for _, e := range c.eps {
		eps = append(eps, *e.info.Load())
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.Addr, b.Addr) })
	return eps
}

// Connected returns the endpoints with a session that takes calls now,
// breakers aside, by address.
func (c *Client) Connected() []Endpoint {
	up := *c.up.Load()
	eps := make([]Endpoint, 0, len(up))
	for _, e := range up {
		if e.session() != nil {
			eps = append(eps, *e.info.Load())
		}
	}
	return eps
}

// Close stops the client: calls made from now on fail, the resolver is no
// longer followed, and each session is closed once the calls in flight on
// its endpoint are done (within DialTimeout). The peer stays open.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.mu.Lock()
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}
