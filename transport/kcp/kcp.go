// Package kcp carries tp sessions over KCP (github.com/xtaci/kcp-go/v5),
// a reliable protocol over UDP that trades bandwidth for latency: it
// resends early and does not back off as TCP does, for links where a
// round trip matters more than the bytes.
//
//	ln, err := kcp.Listen("127.0.0.1:7000", kcp.Config{})
//	go srv.Serve(ln)
//	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: kcp.Dialer(kcp.Config{})}, heartbeat.New(heartbeat.Config{Interval: time.Second}))
//	sess, err := cli.Dial(ctx, "127.0.0.1:7000")
//
// KCP has no close handshake: a session that ends on one side is not seen
// on the other until something times out. tp's own close notices tell the
// peer of a graceful close; for a connection cut or a peer gone, add
// plugin/heartbeat at both ends, whose interval times the Misses is how
// long a dead session lingers. A dial cannot fail either: a redial that
// reaches no server waits PeerConfig.HandshakeTimeout for a hello before
// it tries again, so lower that timeout where redials should be quick.
// Close lets KCP send what was written for up to four retransmission
// timeouts (at most a second) first, as kcp-go does not say when its
// queue is empty. Encryption is left to plugin/secure (KCP's own block
// ciphers are not used).
package kcp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	kcpgo "github.com/xtaci/kcp-go/v5"
)

// Config holds the KCP knobs that matter; the zero value is the low-
// latency profile: no delay, a 10 ms interval, fast resend after 2
// duplicate acks, no congestion window, windows of 1024 packets.
type Config struct {
	// Delay turns KCP's nodelay mode off (slower, gentler resends).
	Delay bool
	// Interval is KCP's internal clock; 0 means 10 ms.
	Interval time.Duration
	// Resend is the duplicate acks that trigger a fast resend; 0 means 2,
	// negative turns fast resend off.
	Resend int
	// Congestion turns KCP's congestion window on.
	Congestion bool
	// SendWindow and RecvWindow are in packets; 0 means 1024.
	SendWindow, RecvWindow int
	// MTU is the largest UDP payload; 0 means 1400.
	MTU int
}

func (c Config) apply(s *kcpgo.UDPSession) {
	nodelay, interval, resend, nc := 1, 10, 2, 1
	if c.Delay {
		nodelay = 0
	}
	if c.Interval > 0 {
		interval = int(c.Interval / time.Millisecond)
	}
	switch {
	case c.Resend > 0:
		resend = c.Resend
	case c.Resend < 0:
		resend = 0
	}
	if c.Congestion {
		nc = 0
	}
	s.SetNoDelay(nodelay, interval, resend, nc)
	snd, rcv := c.SendWindow, c.RecvWindow
	if snd <= 0 {
		snd = 1024
	}
	if rcv <= 0 {
		rcv = 1024
	}
	s.SetWindowSize(snd, rcv)
	mtu := c.MTU
	if mtu <= 0 {
		mtu = 1400
	}
	s.SetMtu(mtu)
	s.SetWriteDelay(false)
	s.SetACKNoDelay(true)
}

// Listener accepts tp sessions over KCP, for Peer.Serve. Its UDP socket
// carries every session it accepted, so Close stops accepting and the
// socket closes once those sessions have closed too (a graceful close
// finishes them first).
type Listener struct {
	ln  *kcpgo.Listener
	cfg Config

	mu     sync.Mutex
	open   int
	closed bool
	done   chan struct{}
}

// Listen listens on the UDP address addr.
func Listen(addr string, cfg Config) (*Listener, error) {
	ln, err := kcpgo.ListenWithOptions(addr, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	return &Listener{ln: ln, cfg: cfg, done: make(chan struct{})}, nil
}

// Accept returns the next session's connection, tuned by the Config.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		s, err := l.ln.AcceptKCP()
		if err != nil {
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
				return nil, err
			}
		}
		l.mu.Lock()
		if l.closed { // after Close: a straggler's packets, not a session
			l.mu.Unlock()
			s.Close()
			continue
		}
		l.open++
		l.mu.Unlock()
		l.cfg.apply(s)
		return &conn{UDPSession: s, l: l}, nil
	}
}

// Close stops accepting. The socket closes once every session accepted
// has closed.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	last := l.open == 0
	l.mu.Unlock()
	if last {
		return l.ln.Close()
	}
	// The socket stays for the sessions; a blocked Accept must return now.
	return l.ln.SetDeadline(time.Now())
}

func (l *Listener) closedOne() {
	l.mu.Lock()
	l.open--
	last := l.closed && l.open == 0
	l.mu.Unlock()
	if last {
		l.ln.Close()
	}
}

// conn is an accepted session, counted by its listener.
type conn struct {
	*kcpgo.UDPSession
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := closeSession(c.UDPSession)
	if c.l != nil {
		c.once.Do(c.l.closedOne)
	}
	return err
}

// closeWait bounds how long Close lets KCP send what was written.
const closeWait = time.Second

// closeSession closes s once what was written has had time to go: KCP's
// Close drops what is unsent, and kcp-go does not say when its queue is
// empty, so it waits four retransmission timeouts (at most closeWait),
// enough for a written frame and one resend on a live link.
func closeSession(s *kcpgo.UDPSession) error {
	time.Sleep(min(closeWait, 4*time.Duration(s.GetRTO())*time.Millisecond))
	return s.Close()
}

// Addr is the UDP address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Dialer returns a PeerConfig.Dialer that dials UDP addresses over KCP;
// network is ignored. KCP has no handshake: the dial succeeds at once,
// and tp's hello, which Dial waits for, proves the peer is there.
func Dialer(cfg Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := kcpgo.DialWithOptions(addr, nil, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("kcp: %w", err)
		}
		cfg.apply(s)
		return &conn{UDPSession: s}, nil
	}
}
