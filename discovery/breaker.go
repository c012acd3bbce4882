package discovery

import (
	"sync"
	"sync/atomic"
	"time"
)

// BreakerConfig sets when an endpoint is ejected for failing: its breaker
// opens, the endpoint takes no calls for a while, then one probe call
// decides whether it takes calls again (half-open) or stays out twice as
// long. Failures are what say the endpoint, not the call, is at fault: a
// broken connection, a timeout, an overloaded or failed (CodeInternal)
// peer. A handler's own error codes are answers, not failures.
type BreakerConfig struct {
	// Disabled keeps every breaker closed.
	Disabled bool
	// ConsecutiveFailures opens the breaker after that many failures in a
	// row; 0 means 5.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when at least that share of the
	// calls in Window failed, once there were MinCalls; 0 means 0.5.
	FailureRatio float64
	// MinCalls is how many calls Window needs before FailureRatio counts;
	// 0 means 20.
	MinCalls int
	// Window is the span over which FailureRatio is counted; 0 means 10 s.
	Window time.Duration
	// OpenFor is how long a breaker stays open the first time; each failed
	// probe doubles it, up to MaxOpenFor. 0 means 1 s.
	OpenFor time.Duration
	// MaxOpenFor bounds OpenFor's doubling; 0 means 30 s.
	MaxOpenFor time.Duration
}

func (c BreakerConfig) settle() BreakerConfig {
	if c.ConsecutiveFailures <= 0 {
		c.ConsecutiveFailures = 5
	}
	if c.FailureRatio <= 0 {
		c.FailureRatio = 0.5
	}
	if c.MinCalls <= 0 {
		c.MinCalls = 20
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.OpenFor <= 0 {
		c.OpenFor = time.Second
	}
	if c.MaxOpenFor <= 0 {
		c.MaxOpenFor = 30 * time.Second
	}
	c.MaxOpenFor = max(c.MaxOpenFor, c.OpenFor)
	return c
}

type breakerState int32

const (
	closed breakerState = iota
	open
	halfOpen
)

// breaker is one endpoint's. A closed breaker, the usual case, costs a
// call a few atomic operations and no lock.
type breaker struct {
	cfg   BreakerConfig
	state atomic.Int32 // a breakerState
	calls atomic.Int64 // in the window
	fails atomic.Int64 // in the window
	inRow atomic.Int64 // failures in a row
	since atomic.Int64 // unix nanos: the window's start (closed), or when it opened

	mu      sync.Mutex // for every change of state
	openFor time.Duration
	probing bool // half-open: the probe call is out
}

func newBreaker(cfg BreakerConfig) *breaker {
	b := &breaker{cfg: cfg, openFor: cfg.OpenFor}
	b.since.Store(time.Now().UnixNano())
	return b
}

func (b *breaker) current() breakerState { return breakerState(b.state.Load()) }

// available reports whether the endpoint may be offered a call now: the
// breaker is closed, or its probe is free.
func (b *breaker) available(now time.Time) bool {
	if b.cfg.Disabled || b.current() == closed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openedLongEnough(now)
	return b.current() == closed || b.current() == halfOpen && !b.probing
}

// openedLongEnough moves an open breaker whose time is up to half-open.
// Called with mu held.
func (b *breaker) openedLongEnough(now time.Time) {
	if b.current() == open && now.UnixNano()-b.since.Load() >= int64(b.openFor) {
		b.state.Store(int32(halfOpen))
	}
}

// claim admits a call chosen among the available endpoints; probe says
// the call is the half-open breaker's single probe. It fails when another
// caller took the probe first. Every admitted call must be recorded.
func (b *breaker) claim(now time.Time) (ok, probe bool) {
	if b.cfg.Disabled || b.current() == closed {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openedLongEnough(now)
	switch b.current() {
	case closed:
		return true, false
	case halfOpen:
		if !b.probing {
			b.probing = true
			return true, true
		}
	}
	return false, false
}

// release gives back a probe claimed for a call that was not made.
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// record counts an admitted call's outcome; failed says the endpoint was
// at fault, probe is what claim said.
func (b *breaker) record(now time.Time, failed, probe bool) {
	if b.cfg.Disabled {
		return
	}
	if probe {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.probing = false
		if b.current() != halfOpen {
			return // reset meanwhile
		}
		if failed {
			b.openFor = min(2*b.openFor, b.cfg.MaxOpenFor)
			b.trip(now)
		} else {
			b.resetLocked(now)
		}
		return
	}
	if b.current() != closed {
		return // admitted before the breaker opened: it has its verdict
	}
	if now.UnixNano()-b.since.Load() > int64(b.cfg.Window) {
		b.mu.Lock()
		if now.UnixNano()-b.since.Load() > int64(b.cfg.Window) && b.current() == closed {
			b.since.Store(now.UnixNano())
			b.calls.Store(0)
			b.fails.Store(0)
		}
		b.mu.Unlock()
	}
	calls := b.calls.Add(1)
	if !failed {
		if b.inRow.Load() != 0 {
			b.inRow.Store(0)
		}
		return
	}
	fails, inRow := b.fails.Add(1), b.inRow.Add(1)
	if inRow < int64(b.cfg.ConsecutiveFailures) &&
		(calls < int64(b.cfg.MinCalls) || float64(fails) < b.cfg.FailureRatio*float64(calls)) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current() == closed {
		b.trip(now)
	}
}

// trip opens the breaker. Called with mu held.
func (b *breaker) trip(now time.Time) {
	b.since.Store(now.UnixNano())
	b.state.Store(int32(open))
}

// reset closes the breaker with fresh counts, as a good probe does; the
// client resets it when the endpoint is connected again after it had no
// connection at all.
func (b *breaker) reset(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resetLocked(now)
}

func (b *breaker) resetLocked(now time.Time) {
	b.probing = false
	b.openFor = b.cfg.OpenFor
	b.calls.Store(0)
	b.fails.Store(0)
	b.inRow.Store(0)
	b.since.Store(now.UnixNano())
	b.state.Store(int32(closed))
}
