// Package heartbeat closes sessions whose peer has gone silent, and keeps
// quiet sessions provably alive with pings.
//
// Add the plugin at both ends:
//
//	hb := heartbeat.New(heartbeat.Config{Interval: 5 * time.Second})
//	srv, err := tp.NewPeer(tp.PeerConfig{ListenAddr: ":9090"}, hb)
//	cli, err := tp.NewPeer(tp.PeerConfig{}, heartbeat.New(heartbeat.Config{Interval: 5 * time.Second}))
//
// Every message a session receives counts as a sign of life. When nothing
// has arrived for an interval, the plugin pings: a CALL to the heartbeat
// route, which the peer's plugin answers like any other call (the pong).
// When nothing has arrived for Misses intervals, the session is closed,
// and so the peer, whose own plugin sees the same silence, closes its end.
// Either end may ping; a Passive end only answers and watches.
//
// Pings ride on the normal message path: they pass every plugin, count in
// metrics and show in PrintDetail logs like any call.
package heartbeat

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Config tunes the plugin; the zero value pings every 10 seconds and
// closes a session silent for 30.
type Config struct {
	// Interval is how long a session may be quiet before a ping; 0 means
	// 10 seconds.
	Interval time.Duration
	// Misses is how many silent intervals close a session; 0 means 3.
	Misses int
	// Passive sends no pings: the end answers pings and closes silent
	// sessions, and relies on the other end to ping.
	Passive bool
}

// Plugin is the plugin. Use one per peer.
type Plugin struct {
	cfg   Config
	route atomic.Pointer[string]
}

var (
	_ tp.PostNewPeerPlugin         = (*Plugin)(nil)
	_ tp.PostDialPlugin            = (*Plugin)(nil)
	_ tp.PostAcceptPlugin          = (*Plugin)(nil)
	_ tp.PostDisconnectPlugin      = (*Plugin)(nil)
	_ tp.PostReadCallHeaderPlugin  = (*Plugin)(nil)
	_ tp.PostReadPushHeaderPlugin  = (*Plugin)(nil)
	_ tp.PostReadReplyHeaderPlugin = (*Plugin)(nil)
)

// New returns the plugin.
func New(cfg Config) *Plugin {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Misses <= 0 {
		cfg.Misses = 3
	}
	return &Plugin{cfg: cfg}
}

// Name implements tp.Plugin.
func (h *Plugin) Name() string { return "heartbeat" }

// Heartbeat is the pong: the route pings call. Its name follows the peer's
// naming: "/heartbeat", or "Heartbeat" with tp.RPCNaming.
func heartbeat(tp.CallCtx, *struct{}) (*struct{}, *tp.Status) { return nil, nil }

// PostNewPeer registers the heartbeat route.
func (h *Plugin) PostNewPeer(p *tp.Peer) error {
	route := p.RouteCallFunc(heartbeat)
	h.route.Store(&route)
	return nil
}

// watchKey holds a session's watch.
var watchKey = tp.NewKey[*watch]("heartbeat watch")

// watch follows one session: received counts messages in, and a timer
// looks at it once per interval.
type watch struct {
	h        *Plugin
	sess     *tp.Session
	received atomic.Uint64

	mu      sync.Mutex // guards what the timer touches, and stopped
	seen    uint64     // received at the last tick
	misses  int
	timer   *time.Timer
	stopped bool
}

func (h *Plugin) start(s *tp.Session) {
	w := &watch{h: h, sess: s}
	watchKey.Set(s, w)
	w.mu.Lock()
	w.timer = time.AfterFunc(h.cfg.Interval, w.tick)
	w.mu.Unlock()
}

// PostDial starts watching a dialed session; after a redial the count of
// silent intervals starts again.
func (h *Plugin) PostDial(s *tp.Session, redial bool) error {
	if !redial {
		h.start(s)
	} else if w := watchOf(s); w != nil {
		w.mu.Lock()
		w.misses = 0
		w.mu.Unlock()
	}
	return nil
}

// PostAccept starts watching an accepted session.
func (h *Plugin) PostAccept(s *tp.Session) error {
	h.start(s)
	return nil
}

// PostDisconnect stops watching.
func (h *Plugin) PostDisconnect(s *tp.Session) {
	if w := watchOf(s); w != nil {
		w.mu.Lock()
		w.stopped = true
		w.timer.Stop()
		w.mu.Unlock()
	}
}

// The read hooks count signs of life: any message in.

// PostReadCallHeader counts a CALL in.
func (h *Plugin) PostReadCallHeader(c tp.ReadCtx) error { return alive(c.Session()) }

// PostReadPushHeader counts a PUSH in.
func (h *Plugin) PostReadPushHeader(c tp.ReadCtx) error { return alive(c.Session()) }

// PostReadReplyHeader counts a REPLY in, a pong among them.
func (h *Plugin) PostReadReplyHeader(c tp.ReadCtx) error { return alive(c.Session()) }

func alive(s *tp.Session) *tp.Status {
	if w := watchOf(s); w != nil {
		w.received.Add(1)
	}
	return nil
}

func watchOf(s *tp.Session) *watch {
	w, _ := watchKey.Get(s)
	return w
}

// tick runs once per interval: it notes whether anything arrived, closes a
// session silent too long, and pings a quiet one.
func (w *watch) tick() {
	cfg := w.h.cfg
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	if n := w.received.Load(); n != w.seen {
		w.seen, w.misses = n, 0
	} else if w.sess.Health() { // a redialing session is not silent, just away
		w.misses++
	}
	misses := w.misses
	if w.stopped = misses >= cfg.Misses; !w.stopped {
		w.timer.Reset(cfg.Interval)
	}
	w.mu.Unlock()

	if misses >= cfg.Misses {
		w.sess.Peer().Logger().Warn("heartbeat: peer silent; closing the session",
			"session", w.sess.ID(), "silent_for", time.Duration(misses)*cfg.Interval)
		w.sess.Close()
		return
	}
	if misses > 0 && !cfg.Passive && w.sess.Health() {
		// Nobody waits for the pong: arriving, it counts as a message in.
		w.sess.AsyncCall(context.Background(), *w.h.route.Load(), nil, nil, nil, tp.WithContextAge(cfg.Interval))
	}
}
