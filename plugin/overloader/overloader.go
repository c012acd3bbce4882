// Package overloader sheds load: it caps the sessions a peer accepts and
// the rate of calls and pushes it serves, overall and per session.
//
//	srv, err := tp.NewPeer(cfg, overloader.New(overloader.Config{
//		MaxSessions: 10000,
//		Rate:        50000, Burst: 5000,  // messages per second, all sessions
//		SessionRate: 500, SessionBurst: 50, // and per session
//	}))
//
// The excess is refused at once with CodeOverloaded: a session over the
// cap is closed with a notice saying so (the dialer's calls get it), a
// CALL over a rate is answered with it, a PUSH over a rate is dropped.
// Nothing waits: limits are token buckets (golang.org/x/time/rate) asked
// without blocking, so load never queues here.
package overloader

import (
	"fmt"
	"sync/atomic"

	"github.com/seed-a9a850dd/tp"
	"golang.org/x/time/rate"
)

// Config sets the limits; a zero field means no limit.
type Config struct {
	// MaxSessions caps the accepted sessions held at once.
	MaxSessions int
	// Rate is how many CALLs and PUSHes per second the peer serves, over
	// all sessions; Burst is how many may come at once (0 means Rate,
	// rounded up).
	Rate  float64
	Burst int
	// SessionRate and SessionBurst are the same, per session.
	SessionRate  float64
	SessionBurst int
}

// Plugin is the plugin.
type Plugin struct {
	cfg      Config
	all      *rate.Limiter // nil without Rate
	sessions atomic.Int64
	// Made once: refusing must stay cheap when refusing is all there is.
	overAll, overSession *tp.Status
}

var (
	_ tp.PostAcceptPlugin         = (*Plugin)(nil)
	_ tp.PostDisconnectPlugin     = (*Plugin)(nil)
	_ tp.PostReadCallHeaderPlugin = (*Plugin)(nil)
	_ tp.PostReadPushHeaderPlugin = (*Plugin)(nil)
)

// New returns the plugin.
func New(cfg Config) *Plugin {
	o := &Plugin{cfg: cfg,
		overAll:     tp.NewStatus(tp.CodeOverloaded, fmt.Sprintf("overloader: the peer is over %g messages per second; retry later", cfg.Rate), nil),
		overSession: tp.NewStatus(tp.CodeOverloaded, fmt.Sprintf("overloader: over %g messages per second on this session; slow down", cfg.SessionRate), nil),
	}
	if cfg.Rate > 0 {
		o.all = rate.NewLimiter(rate.Limit(cfg.Rate), burst(cfg.Rate, cfg.Burst))
	}
	return o
}

func burst(r float64, b int) int {
	if b > 0 {
		return b
	}
	return int(r + 0.999)
}

// Name implements tp.Plugin.
func (o *Plugin) Name() string { return "overloader" }

// Sessions returns the accepted sessions held now.
func (o *Plugin) Sessions() int { return int(o.sessions.Load()) }

// state is what the plugin keeps for a session (stateKey).
type state struct {
	counted bool          // counted in sessions
	limit   *rate.Limiter // nil without SessionRate
}

var stateKey = tp.NewKey[*state]("overloader state")

// PostAccept admits a session if the cap allows.
func (o *Plugin) PostAccept(s *tp.Session) error {
	st := &state{}
	if o.cfg.SessionRate > 0 {
		st.limit = rate.NewLimiter(rate.Limit(o.cfg.SessionRate), burst(o.cfg.SessionRate, o.cfg.SessionBurst))
	}
	if max := int64(o.cfg.MaxSessions); max > 0 {
		if n := o.sessions.Add(1); n > max {
			o.sessions.Add(-1)
			return tp.NewStatus(tp.CodeOverloaded, fmt.Sprintf("overloader: %d sessions, the limit; try again later", max), nil)
		}
		st.counted = true
	}
	stateKey.Set(s, st)
	return nil
}

// PostDisconnect releases the session's place.
func (o *Plugin) PostDisconnect(s *tp.Session) {
	if v, ok := stateKey.Delete(s); ok && v.counted {
		o.sessions.Add(-1)
	}
}

// PostReadCallHeader answers a CALL over a rate with CodeOverloaded.
func (o *Plugin) PostReadCallHeader(c tp.ReadCtx) error { return o.allow(c) }

// PostReadPushHeader drops a PUSH over a rate.
func (o *Plugin) PostReadPushHeader(c tp.ReadCtx) error { return o.allow(c) }

func (o *Plugin) allow(c tp.ReadCtx) *tp.Status {
	if v, ok := stateKey.Get(c.Session()); ok {
		if l := v.limit; l != nil && !l.Allow() {
			return o.overSession
		}
	}
	if o.all != nil && !o.all.Allow() {
		return o.overAll
	}
	return nil
}
