// Package secure encrypts message bodies with AES-GCM.
//
// With a configured key, both ends share it; without one, each session
// negotiates its own (X25519 and HKDF-SHA256) while it connects:
//
//	sec, err := secure.New(secure.Config{})           // negotiated keys
//	srv, err := tp.NewPeer(cfg, sec)
//	srv.RouteCall(new(Vault), sec.Route())            // this route takes only encrypted calls
//
//	cli, err := tp.NewPeer(cfg, mustSecure(secure.New(secure.Config{})))
//	sess.Call(ctx, "/vault/get", arg, &out, secure.WithSecure()) // this message is encrypted
//
// What is encrypted: CALLs and PUSHes sent with WithSecure (or all of them,
// with Config.All), and the replies to encrypted CALLs. The body is
// encrypted after its codec. A body that fails authentication (tampered,
// or under another key) is refused with CodeBadMessage, and so is a reply
// to an encrypted CALL that comes back unencrypted (a relay that strips
// the seal to forge a body); a route guarded by Route refuses plaintext
// with CodeUnauthorized.
//
// What is authenticated, precisely: the body, bound to the message type,
// seq and service method. Not authenticated, and readable on the wire:
// the meta, a reply's status, and the handshake (auth's credential
// included). A relay can add or change meta, turn a reply into an error
// status, drop messages, and replay a recorded message on a new
// connection with a configured key (the key is the same for every session
// and both directions). Where an active attacker on the path matters, use
// TLS (PeerConfig.TLS), which covers all of it.
//
// A negotiated key keeps a passive eavesdropper out, but the exchange is
// not authenticated: a peer in the middle can complete it with both ends.
// Against an active attacker, use TLS. Negotiation talks during the handshake, so add
// the plugin at both ends, in the same order relative to other plugins
// that do (auth).
package secure

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
)

// MetaKey marks a message whose body is encrypted (or, set by WithSecure
// before sending, is to be).
const MetaKey = "tp-secure"

// ServiceMethod names the key exchange on the wire.
const ServiceMethod = "/secure/key"

// Config configures the plugin.
type Config struct {
	// Key is a shared AES key of 16, 24 or 32 bytes; nil negotiates a
	// 32-byte key per session.
	Key []byte
	// All encrypts every CALL and PUSH sent, not just those sent with
	// WithSecure.
	All bool
	// Timeout bounds the key exchange; 0 means 10 seconds.
	Timeout time.Duration
}

// Plugin is the plugin.
type Plugin struct {
	cfg  Config
	aead cipher.AEAD // for a configured key
}

var (
	_ tp.PostDialPlugin         = (*Plugin)(nil)
	_ tp.PostAcceptPlugin       = (*Plugin)(nil)
	_ tp.PreWriteCallPlugin     = (*Plugin)(nil)
	_ tp.PreWritePushPlugin     = (*Plugin)(nil)
	_ tp.PreWriteReplyPlugin    = (*Plugin)(nil)
	_ tp.PreReadCallBodyPlugin  = (*Plugin)(nil)
	_ tp.PreReadPushBodyPlugin  = (*Plugin)(nil)
	_ tp.PreReadReplyBodyPlugin = (*Plugin)(nil)
)

// New returns the plugin, or an error for a key of the wrong size.
func New(cfg Config) (*Plugin, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	s := &Plugin{cfg: cfg}
	if cfg.Key != nil {
		aead, err := newAEAD(cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("secure: Config.Key: %w", err)
		}
		s.aead = aead
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Name implements tp.Plugin.
func (s *Plugin) Name() string { return "secure" }

// WithSecure encrypts the message it is given to (Call, Push); the reply
// to such a CALL is encrypted too.
func WithSecure() tp.MessageSetting {
	return func(m *socket.Message) { m.Meta.Set(MetaKey, "1") }
}

// keyOf is a session's negotiated key.
var keyOf = tp.NewKey[cipher.AEAD]("secure session key")

func (s *Plugin) aeadFor(sess *tp.Session) (cipher.AEAD, *tp.Status) {
	if s.aead != nil {
		return s.aead, nil
	}
	if a, ok := keyOf.Get(sess); ok {
		return a, nil
	}
	return nil, tp.NewStatus(tp.CodeFailedPrecondition, "secure: the session has no key; add the plugin at both ends", nil)
}

// PostDial negotiates the session key, on every dial and redial.
func (s *Plugin) PostDial(sess *tp.Session, _ bool) error {
	if s.aead != nil {
		return nil
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: cannot make a key", err)
	}
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	m.Type, m.ServiceMethod, m.Payload = socket.TypeCall, ServiceMethod, priv.PublicKey().Bytes()
	if err := sess.WriteHandshake(m); err != nil {
		return err
	}
	if err := sess.ReadHandshake(m, s.cfg.Timeout); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			return tp.NewStatus(tp.CodeFailedPrecondition, "secure: the peer does not exchange keys; add the secure plugin to it", err)
		}
		return err
	}
	if m.Type != socket.TypeReply || m.ServiceMethod != ServiceMethod {
		return tp.NewStatus(tp.CodeBadMessage, fmt.Sprintf("secure: the peer answered the key exchange with a %s to %q", m.Type, m.ServiceMethod), nil)
	}
	if m.Status != nil {
		return m.Status
	}
	if st := s.agree(sess, priv, m.Payload, true); st != nil {
		return st
	}
	return nil
}

// PostAccept answers the dialer's key exchange.
func (s *Plugin) PostAccept(sess *tp.Session) error {
	if s.aead != nil {
		return nil
	}
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := sess.ReadHandshake(m, s.cfg.Timeout); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			return tp.NewStatus(tp.CodeFailedPrecondition, "secure: the dialing peer sent no key exchange; add the secure plugin to it", nil)
		}
		return err
	}
	if m.Type != socket.TypeCall || m.ServiceMethod != ServiceMethod {
		return tp.NewStatus(tp.CodeFailedPrecondition, fmt.Sprintf("secure: %s %q came before the key exchange; add the secure plugin to the dialing peer", m.Type, m.ServiceMethod), nil)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: cannot make a key", err)
	}
	st := s.agree(sess, priv, m.Payload, false)
	m.Type, m.Status, m.Payload = socket.TypeReply, st, priv.PublicKey().Bytes()
	if err := sess.WriteHandshake(m); err != nil && st == nil {
		return err
	}
	if st != nil {
		return st
	}
	return nil
}

// agree derives the session key from our private key and the peer's
// public one; the info binds both public keys, dialer's first.
func (s *Plugin) agree(sess *tp.Session, priv *ecdh.PrivateKey, peerPub []byte, dialer bool) *tp.Status {
	pub, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return tp.NewStatus(tp.CodeBadMessage, "secure: the peer's public key is malformed", err)
	}
	shared, err := priv.ECDH(pub)
	if err != nil {
		return tp.NewStatus(tp.CodeBadMessage, "secure: key agreement failed", err)
	}
	mine := priv.PublicKey().Bytes()
	info := append([]byte("tp secure v1"), mine...)
	info = append(info, peerPub...)
	if !dialer {
		info = append(append([]byte("tp secure v1"), peerPub...), mine...)
	}
	key, err := hkdf.Key(sha256.New, shared, nil, string(info), 32)
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: key derivation failed", err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: cannot make the cipher", err)
	}
	keyOf.Set(sess, aead)
	return nil
}

// PreWriteCall encrypts a CALL sent with WithSecure, or any with All.
func (s *Plugin) PreWriteCall(c tp.WriteCtx) error {
	if st := s.seal(c, s.cfg.All); st != nil {
		return st
	}
	if cc, ok := c.(*tp.CallCmd); ok && cc.Output().Meta.Get(MetaKey) != "" {
		// Remember it: its reply must come sealed too.
		cc.SetContext(context.WithValue(cc.Context(), sealedCall{}, true))
	}
	return nil
}

// sealedCall marks, in a call's context, a CALL sent sealed.
type sealedCall struct{}

// PreWritePush encrypts a PUSH sent with WithSecure, or any with All.
func (s *Plugin) PreWritePush(c tp.WriteCtx) error { return s.seal(c, s.cfg.All) }

// PreWriteReply encrypts the reply to an encrypted CALL.
func (s *Plugin) PreWriteReply(c tp.WriteCtx) error {
	in, ok := c.(tp.ReadCtx)
	return s.seal(c, ok && in.Input().Meta.Get(MetaKey) != "")
}

func (s *Plugin) seal(c tp.WriteCtx, always bool) *tp.Status {
	m := c.Output()
	if !always && m.Meta.Get(MetaKey) == "" {
		return nil
	}
	aead, st := s.aeadFor(c.Session())
	if st != nil {
		return st
	}
	// One buffer: the nonce, then the body, sealed in place.
	n := aead.NonceSize()
	buf := make([]byte, n, n+len(m.Payload)+512)
	if _, err := rand.Read(buf); err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: no randomness for a nonce", err)
	}
	buf, err := m.MarshalBody(buf)
	if err != nil {
		return tp.NewStatus(tp.CodeInvalidArgument, "secure: cannot encode the body to encrypt", err)
	}
	m.Payload = aead.Seal(buf[:n], buf[:n], buf[n:], additional(m))
	m.Body = nil
	m.Meta.Set(MetaKey, "1")
	return nil
}

// PreReadCallBody decrypts an encrypted CALL.
func (s *Plugin) PreReadCallBody(c tp.ReadCtx) error { return s.open(c) }

// PreReadPushBody decrypts an encrypted PUSH.
func (s *Plugin) PreReadPushBody(c tp.ReadCtx) error { return s.open(c) }

// PreReadReplyBody decrypts an encrypted REPLY.
func (s *Plugin) PreReadReplyBody(c tp.ReadCtx) error {
	if c.Context().Value(sealedCall{}) != nil && c.Input().Meta.Get(MetaKey) == "" && c.Input().Status.OK() {
		// Someone between stripped the seal and put a body of their own.
		return errUnsealedReply
	}
	return s.open(c)
}

var errUnsealedReply = tp.NewStatus(tp.CodeBadMessage, "secure: a sealed call got a reply that is not sealed: tampered with on the way", nil)

func (s *Plugin) open(c tp.ReadCtx) *tp.Status {
	m := c.Input()
	if m.Meta.Get(MetaKey) == "" {
		return nil
	}
	aead, st := s.aeadFor(c.Session())
	if st != nil {
		return st
	}
	n := aead.NonceSize()
	if len(m.Payload) < n+aead.Overhead() {
		return errAuth
	}
	plain, err := aead.Open(m.Payload[n:n], m.Payload[:n], m.Payload[n:], additional(m))
	if err != nil {
		return errAuth
	}
	m.Payload = plain // decrypted in place, in the message's own buffer
	return nil
}

var errAuth = tp.NewStatus(tp.CodeBadMessage, "secure: the body fails authentication: tampered with, or sealed under another key", nil)

// additional is the header data the ciphertext is bound to: the type (a
// REPLY's differs from its CALL's), seq and service method.
func additional(m *socket.Message) []byte {
	ad := make([]byte, 5, 5+len(m.ServiceMethod))
	ad[0] = byte(m.Type)
	binary.BigEndian.PutUint32(ad[1:], m.Seq)
	return append(ad, m.ServiceMethod...)
}

// Route returns a plugin for RouteCall, RoutePush or SubRoute whose
// routes take only encrypted messages (their replies are encrypted, as
// every reply to an encrypted CALL is). The plugin itself must be
// on the peer.
func (s *Plugin) Route() tp.Plugin { return guard{} }

type guard struct{}

func (guard) Name() string { return "secure-route" }

func (guard) PreReadCallBody(c tp.ReadCtx) error { return require(c) }
func (guard) PreReadPushBody(c tp.ReadCtx) error { return require(c) }

func require(c tp.ReadCtx) *tp.Status {
	if c.Input().Meta.Get(MetaKey) == "" {
		return tp.NewStatus(tp.CodeUnauthorized, fmt.Sprintf("secure: %q takes only encrypted messages; send with secure.WithSecure()", c.Input().ServiceMethod), nil)
	}
	return nil
}
