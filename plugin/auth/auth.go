// Package auth makes a session's first message a credential, checked
// before anything else is served.
//
// The dialing side adds a Bearer, the accepting side a Checker:
//
//	cli, err := tp.NewPeer(tp.PeerConfig{}, auth.NewBearer(func(*tp.Session) string { return token }))
//	srv, err := tp.NewPeer(tp.PeerConfig{}, auth.NewChecker(func(s *tp.Session, credential string) error {
//		if !auth.Equal(credential, token) {
//			return tp.NewStatus(tp.CodeUnauthorized, "unknown token", nil)
//		}
//		return nil
//	}))
//
// The exchange happens in the PostDial and PostAccept hooks, before either
// session serves: the Bearer sends a CALL to ServiceMethod carrying the
// credential, the Checker answers it. A refused session closes at both
// ends; Dial (or a call, for a client without a Bearer) returns the
// Checker's status. A redialing session authenticates again.
//
// What it protects, and what not:
//   - The Checker guards the sessions its peer accepts. The dialing side
//     learns nothing about who accepted it: authenticate the server with
//     TLS (PeerConfig.TLS), whose certificate the client checks.
//   - The credential crosses as the connection carries it. The Bearer
//     sends it only over TLS, loopback, or a connection plugin/secure
//     seals with an exchange that proved the other end (Session.Sealed:
//     a shared Key, or a pinned server key);
//     elsewhere it refuses, unless Bearer.AllowPlaintext says the network
//     is trusted.
//   - The Checker refuses, unchecked, the attempts of a remote IP that has
//     failed MaxFailures times within FailureWindow; compare secrets with
//     Equal, in constant time.
//
// Order matters where several plugins talk during the handshake (auth and
// secure, say): add them in the same order at both ends.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// ServiceMethod names the credential CALL on the wire.
const ServiceMethod = "/auth"

// DefaultTimeout bounds the exchange when a plugin's Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Bearer sends a credential on every dial and redial.
type Bearer struct {
	credential func(*tp.Session) string
	// Timeout bounds the wait for the Checker's answer; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// AllowPlaintext lets the credential cross a connection that is
	// neither TLS nor loopback, where anyone on the path can read it. Set
	// it only for a network you trust.
	AllowPlaintext bool
}

// Equal reports whether credential is want, in time that does not depend
// on where they differ (nor on their lengths), so a Checker's answer
// timing tells an attacker nothing.
func Equal(credential, want string) bool {
	a, b := sha256.Sum256([]byte(credential)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// exposed reports whether a credential sent on s could be read on the
// way, or by someone else than the peer: not TLS, not loopback, not sealed
// by an exchange that proved the peer.
func exposed(s *tp.Session) bool {
	if s.TLS() != nil || s.Sealed() {
		return false
	}
	if ap, err := netip.ParseAddrPort(s.RemoteAddr().String()); err == nil && ap.Addr().IsLoopback() {
		return false
	}
	return s.RemoteAddr().Network() != "unix"
}

// NewBearer returns the dialing side's plugin: credential gives what to
// send, per session.
func NewBearer(credential func(*tp.Session) string) *Bearer {
	return &Bearer{credential: credential}
}

// Name implements tp.Plugin.
func (b *Bearer) Name() string { return "auth-bearer" }

// PostDial sends the credential and waits for the answer.
func (b *Bearer) PostDial(s *tp.Session, _ bool) error {
	if !b.AllowPlaintext && exposed(s) {
		return tp.NewStatus(tp.CodeFailedPrecondition, "auth: the credential would cross "+s.RemoteAddr().String()+" in clear; use PeerConfig.TLS or plugin/secure with Key or Trust, or set Bearer.AllowPlaintext for a network you trust", nil)
	}
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	m.Type, m.ServiceMethod, m.BodyCodec = socket.TypeCall, ServiceMethod, codec.PlainID
	m.Payload = []byte(b.credential(s))
	if err := s.WriteHandshake(m); err != nil {
		return err
	}
	if err := s.ReadHandshake(m, timeout(b.Timeout)); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			return tp.NewStatus(tp.CodeFailedPrecondition, "auth: the peer does not check credentials; add auth.NewChecker to it", err)
		}
		return err
	}
	switch {
	case m.Type != socket.TypeReply || m.ServiceMethod != ServiceMethod:
		return tp.NewStatus(tp.CodeBadMessage, fmt.Sprintf("auth: the peer answered the credential with a %s to %q", m.Type, m.ServiceMethod), nil)
	case m.Status.Code() == tp.CodeNotFound:
		return tp.NewStatus(tp.CodeFailedPrecondition, "auth: the peer does not check credentials; add auth.NewChecker to it", m.Status)
	case m.Status != nil:
		return m.Status
	}
	return nil
}

// Checker verifies the credential of every accepted session.
type Checker struct {
	check func(*tp.Session, string) error
	// Timeout bounds the wait for the credential; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxFailures is how many refused credentials one remote IP may send
	// within FailureWindow; its attempts past that are refused unchecked
	// until the window has passed. 0 means 5; FailureWindow 0 means a
	// minute.
	MaxFailures   int
	FailureWindow time.Duration

	mu       sync.Mutex
	failures map[string]*failures // by remote IP
}

type failures struct {
	n     int
	first time.Time
}

// maxTracked bounds the failure table: past it, it starts over rather
// than grow with every address an attacker has.
const maxTracked = 10000

// throttled reports whether ip has used up its failures.
func (c *Checker) throttled(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.failures[ip]
	if f == nil {
		return false
	}
	if time.Since(f.first) > c.window() {
		delete(c.failures, ip)
		return false
	}
	return f.n >= c.maxFailures()
}

// failed counts a refused credential from ip.
func (c *Checker) failed(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil || len(c.failures) >= maxTracked {
		c.failures = map[string]*failures{}
	}
	f := c.failures[ip]
	if f == nil || time.Since(f.first) > c.window() {
		f = &failures{first: time.Now()}
		c.failures[ip] = f
	}
	f.n++
}

func (c *Checker) maxFailures() int {
	if c.MaxFailures > 0 {
		return c.MaxFailures
	}
	return 5
}

func (c *Checker) window() time.Duration {
	if c.FailureWindow > 0 {
		return c.FailureWindow
	}
	return time.Minute
}

// remoteIP is the host of s's remote address.
func remoteIP(s *tp.Session) string {
	addr := s.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// NewChecker returns the accepting side's plugin: check returns nil to
// accept the credential, or the error to refuse the session with (a
// *tp.Status keeps its code; any other error is CodeUnauthorized). check
// may keep what it learns, such as the user, in a tp.Key.
func NewChecker(check func(sess *tp.Session, credential string) error) *Checker {
	return &Checker{check: check}
}

// Name implements tp.Plugin.
func (c *Checker) Name() string { return "auth-checker" }

// PostAccept reads the credential, checks it and answers.
func (c *Checker) PostAccept(s *tp.Session) error {
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := s.ReadHandshake(m, timeout(c.Timeout)); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			err = tp.NewStatus(tp.CodeUnauthorized, "auth: the dialing peer sent no credential; add auth.NewBearer to it", nil)
			s.Peer().Logger().Debug("auth: refused a session", "remote", s.RemoteAddr().String(), "status", err)
		}
		return err
	}
	ip := remoteIP(s)
	var st *tp.Status
	if c.throttled(ip) {
		st = tp.NewStatus(tp.CodeUnauthorized, "auth: too many refused credentials from this address; try again later", nil)
	} else if m.Type != socket.TypeCall || m.ServiceMethod != ServiceMethod {
		st = tp.NewStatus(tp.CodeUnauthorized, fmt.Sprintf("auth: %s %q came before a credential; add auth.NewBearer to the dialing peer", m.Type, m.ServiceMethod), nil)
	} else {
		var credential string
		if err := m.UnmarshalBody(&credential); err != nil {
			st = tp.NewStatus(tp.CodeUnauthorized, "auth: the credential does not decode", err)
		} else {
			st = status.From(c.check(s, credential), tp.CodeUnauthorized, "auth: refused")
		}
	}
	if st != nil {
		c.failed(ip) // before the answer: the next attempt must find it
	}
	if m.Type == socket.TypeCall { // answer it, so the caller learns the verdict
		m.Type, m.Status, m.Payload, m.BodyCodec = socket.TypeReply, st, nil, 0
		m.Meta.Reset()
		if err := s.WriteHandshake(m); err != nil && st == nil {
			return err
		}
	}
	if st != nil {
		s.Peer().Logger().Debug("auth: refused a session", "remote", s.RemoteAddr().String(), "status", st)
		return st
	}
	return nil
}

func timeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}
