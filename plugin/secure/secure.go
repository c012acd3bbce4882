// Package secure encrypts and authenticates messages with AES-GCM under
// keys each connection negotiates afresh, for a network where TLS is not
// an option.
//
// Every connection starts with a key exchange (ephemeral X25519, keys
// derived with HKDF-SHA256 from both ends' contributions), authenticated
// by what Config gives:
//
//   - Key, a secret both ends share: only a peer that holds it completes
//     the exchange, in either direction.
//   - Identity and Trust, Ed25519 keys: the accepting side signs the
//     exchange with its Identity and the dialer checks the signature
//     against the public keys in its Trust, as a TLS client checks a
//     certificate. With TrustDialers the accepting side asks the same of
//     the dialer.
//   - Unauthenticated, an explicit opt-in: the exchange proves nothing,
//     so a peer in the middle can complete it with both ends and read
//     everything. It keeps out only a passive eavesdropper.
//
// A dial that nothing would authenticate fails, saying what to set.
//
//	sec, err := secure.New(secure.Config{Identity: serverKey})
//	srv, err := tp.NewPeer(cfg, sec)
//	srv.RouteCall(new(Vault), sec.Route()) // this route takes only sealed calls
//
//	cli, err := tp.NewPeer(cfg, mustSecure(secure.New(secure.Config{Trust: []ed25519.PublicKey{serverPub}})))
//	sess.Call(ctx, "/vault/get", arg, &out, secure.WithSecure()) // this call is sealed
//
// What is sealed: CALLs and PUSHes sent with WithSecure (or all of them,
// with Config.All), every reply to a sealed CALL (an error too), and the
// handshake messages of plugins after this one (auth's credential). The
// body is encrypted; the body, its codec, the type, seq, service method,
// every meta pair and a reply's status are authenticated. A sealed
// message that fails authentication, or that was seen before on the
// connection (a replay), is refused with CodeBadMessage, and so is a
// reply to a sealed CALL that comes back unsealed. Keys live as long as
// one connection and differ per direction, so a message recorded on one
// connection means nothing on another.
//
// A sealed message carries the time its sender will wait, so a relay can
// shorten a deadline (as it could delay the message) but never extend it.
//
// What is not protected: the meta and status are readable on the wire;
// the transfer filters are not authenticated; messages sent
// without WithSecure are plaintext, and so are streams (their frames are
// not sealed yet: use TLS for them); a relay can still drop messages or
// the connection. A message sealed more than 16384 messages before one
// already read is refused as a possible replay. Where an active attacker
// on the path matters and TLS is possible, prefer TLS (PeerConfig.TLS).
//
// Add the plugin at both ends. Its exchange runs before the handshake
// hooks of other plugins (auth) wherever it is added, and messages are
// sealed after the last write hook and opened before the first read hook,
// so the order of plugins does not matter to it.
package secure

import (
	"bytes"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
)

// MetaKey marks a message whose body is sealed (or, set by WithSecure
// before sending, is to be).
const MetaKey = "tp-secure"

// ServiceMethod names the key exchange on the wire.
const ServiceMethod = "/secure/key"

// Config configures the plugin. At least one of Key, Identity, Trust,
// TrustDialers or Unauthenticated must be set.
type Config struct {
	// Key is a secret both ends share, at least 16 bytes (32 random bytes
	// are best). It authenticates the exchange both ways: a peer without
	// it cannot complete one.
	Key []byte
	// Identity is this peer's Ed25519 private key. The accepting side
	// signs every exchange with it; the dialing side signs when it has
	// one.
	Identity ed25519.PrivateKey
	// Trust holds the public keys a peer this one dials may prove: a
	// dialed peer must sign with the Identity of one of them.
	Trust []ed25519.PublicKey
	// TrustDialers, when not empty, holds the public keys a dialing peer
	// must prove for this one to accept it.
	TrustDialers []ed25519.PublicKey
	// Unauthenticated lets this peer dial with an exchange that proves
	// nothing about the other end (no Key, no Trust). A peer in the middle
	// can then complete the exchange with both ends and read and change
	// everything; only a passive eavesdropper is kept out.
	Unauthenticated bool
	// All seals every CALL and PUSH sent, not just those sent with
	// WithSecure.
	All bool
	// Timeout bounds each wait of the key exchange; 0 means 10 seconds.
	Timeout time.Duration
}

// Plugin is the plugin.
type Plugin struct {
	cfg Config
}

var (
	_ tp.PostDialPlugin         = (*Plugin)(nil)
	_ tp.PostAcceptPlugin       = (*Plugin)(nil)
	_ tp.PreWriteCallPlugin     = (*Plugin)(nil)
	_ tp.PreWritePushPlugin     = (*Plugin)(nil)
	_ tp.PreWriteReplyPlugin    = (*Plugin)(nil)
	_ tp.PreReadReplyBodyPlugin = (*Plugin)(nil)
	_ tp.SealingPlugin          = (*Plugin)(nil)
	_ tp.Sealer                 = (*keys)(nil)
)

// New returns the plugin, or an error for a config that is malformed or
// authenticates nothing.
func New(cfg Config) (*Plugin, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Key != nil && len(cfg.Key) < 16 {
		return nil, fmt.Errorf("secure: Config.Key has %d bytes; use at least 16 (32 random bytes are best)", len(cfg.Key))
	}
	if cfg.Identity != nil && len(cfg.Identity) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("secure: Config.Identity has %d bytes, not an Ed25519 private key (%d); make one with ed25519.GenerateKey", len(cfg.Identity), ed25519.PrivateKeySize)
	}
	for _, pub := range append(slices.Clip(cfg.Trust), cfg.TrustDialers...) {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("secure: a trusted key has %d bytes, not an Ed25519 public key (%d)", len(pub), ed25519.PublicKeySize)
		}
	}
	if cfg.Key == nil && cfg.Identity == nil && len(cfg.Trust) == 0 && len(cfg.TrustDialers) == 0 && !cfg.Unauthenticated {
		return nil, errors.New("secure: nothing authenticates the key exchange, so a peer in the middle could complete it: set Config.Key (a secret both ends share), or Identity on the accepting side and its public key in the dialer's Trust; or set Unauthenticated to accept that risk")
	}
	return &Plugin{cfg: cfg}, nil
}

// Name implements tp.Plugin.
func (s *Plugin) Name() string { return "secure" }

// SetsSealer implements tp.SealingPlugin: the exchange runs before the
// handshake hooks of other plugins, so what they send is sealed.
func (s *Plugin) SetsSealer() {}

// WithSecure seals the message it is given to (Call, Push); the reply
// to such a CALL is sealed too.
func WithSecure() tp.MessageSetting {
	return func(m *socket.Message) { m.Meta.Set(MetaKey, "1") }
}

// The exchange, three messages on ServiceMethod; each payload starts with
// the version and flags of its sender:
//
//	dialer:    CALL  [1][flags][X25519 public key, 32]
//	acceptor:  REPLY [1][flags][X25519 public key, 32]([Ed25519 public key, 32][signature, 64])[MAC, 32]
//	dialer:    PUSH  ([Ed25519 public key, 32][signature, 64])[MAC, 32]
//
// The acceptor's signature covers t2, the hash of the first message and
// the acceptor's up to its signature; the keys derive from the X25519
// secret with Config.Key as the HKDF salt, bound to t2; each MAC proves
// its sender holds them. The dialer's signature and MAC cover t3, the
// hash of t2 and its own public key.
const (
	version = 1

	pubLen = 32
	sigLen = ed25519.SignatureSize
	macLen = sha256.Size
)

// The flags of an exchange message.
const (
	flagKey      = 1 << iota // the sender has Config.Key
	flagSigns                // the sender signs with its Identity
	flagWantsSig             // the dialer wants the acceptor to sign
)

func (s *Plugin) flags(dialer bool) byte {
	var f byte
	if s.cfg.Key != nil {
		f |= flagKey
	}
	if s.cfg.Identity != nil {
		f |= flagSigns
	}
	if dialer && len(s.cfg.Trust) > 0 {
		f |= flagWantsSig
	}
	return f
}

func refused(code tp.Code, format string, args ...any) *tp.Status {
	return tp.NewStatus(code, "secure: "+fmt.Sprintf(format, args...), nil)
}

// PostDial runs the exchange as the dialer, on every dial and redial.
func (s *Plugin) PostDial(sess *tp.Session, _ bool) error {
	if s.cfg.Key == nil && len(s.cfg.Trust) == 0 && !s.cfg.Unauthenticated {
		return refused(tp.CodeFailedPrecondition, "nothing proves who this peer dials: set Config.Trust to the public key of its Identity, or Config.Key; or set Unauthenticated to accept a peer in the middle")
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return tp.NewStatus(tp.CodeInternal, "secure: cannot make a key", err)
	}
	hello := append([]byte{version, s.flags(true)}, eph.PublicKey().Bytes()...)
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	m.Type, m.ServiceMethod, m.Payload = socket.TypeCall, ServiceMethod, hello
	if err := sess.WriteHandshake(m); err != nil {
		return err
	}
	if err := sess.ReadHandshake(m, s.cfg.Timeout); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			return refused(tp.CodeFailedPrecondition, "the peer does not exchange keys; add the secure plugin to it")
		}
		return err
	}
	if m.Type != socket.TypeReply || m.ServiceMethod != ServiceMethod {
		return refused(tp.CodeBadMessage, "the peer answered the key exchange with a %s to %q", m.Type, m.ServiceMethod)
	}
	if m.Status != nil {
		return m.Status
	}
	// The answer: version, flags, X25519 key, (Ed25519 key, signature), MAC.
	a := m.Payload
	if len(a) < 2+pubLen+macLen || a[0] != version {
		return refused(tp.CodeBadMessage, "the peer's key exchange answer is malformed")
	}
	flags := a[1]
	head := a[:2+pubLen]
	if flags&flagSigns != 0 {
		if len(a) != 2+2*pubLen+sigLen+macLen {
			return refused(tp.CodeBadMessage, "the peer's key exchange answer is malformed")
		}
		head = a[:2+2*pubLen]
	} else if len(a) != 2+pubLen+macLen {
		return refused(tp.CodeBadMessage, "the peer's key exchange answer is malformed")
	}
	if st := s.sameKeyFlag(flags); st != nil {
		return st
	}
	t2 := transcript(hello, head)
	verified := s.cfg.Key != nil
	if len(s.cfg.Trust) > 0 {
		if flags&flagSigns == 0 {
			return refused(tp.CodeUnauthorized, "the peer has no Identity to prove itself with, and Config.Trust asks for one")
		}
		pub, sig := ed25519.PublicKey(a[2+pubLen:2+2*pubLen]), a[2+2*pubLen:2+2*pubLen+sigLen]
		if !trusted(s.cfg.Trust, pub) {
			return refused(tp.CodeUnauthorized, "the peer proves a key that is not in Config.Trust: someone else answered (a peer in the middle?), or Trust lacks its key")
		}
		if !ed25519.Verify(pub, signed("accept", t2), sig) {
			return refused(tp.CodeUnauthorized, "the peer's signature of the exchange fails: tampered with on the way")
		}
		verified = true
	}
	k, st := s.derive(eph, a[2:2+pubLen], t2, true)
	if st != nil {
		return st
	}
	if !hmac.Equal(a[len(a)-macLen:], mac(k.macPeer, t2)) {
		return refused(tp.CodeUnauthorized, "the peer cannot prove it holds the session keys: another Config.Key, or a peer in the middle")
	}
	// The proof of this end: its signature if it has an Identity, and its MAC.
	var proof []byte
	if s.cfg.Identity != nil {
		proof = append(proof, s.cfg.Identity.Public().(ed25519.PublicKey)...)
	}
	t3 := transcript(t2, proof)
	if s.cfg.Identity != nil {
		proof = append(proof, ed25519.Sign(s.cfg.Identity, signed("dial", t3))...)
	}
	m.Reset()
	m.Type, m.ServiceMethod, m.Payload = socket.TypePush, ServiceMethod, append(proof, mac(k.macOwn, t3)...)
	if err := sess.WriteHandshake(m); err != nil {
		return err
	}
	return sess.SetSealer(k, verified)
}

// PostAccept runs the exchange as the accepting side.
func (s *Plugin) PostAccept(sess *tp.Session) error {
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := sess.ReadHandshake(m, s.cfg.Timeout); err != nil {
		if errors.Is(err, tp.ErrNoHandshake) {
			return refused(tp.CodeFailedPrecondition, "the dialing peer sent no key exchange; add the secure plugin to it")
		}
		return err
	}
	if m.Type != socket.TypeCall || m.ServiceMethod != ServiceMethod {
		return refused(tp.CodeFailedPrecondition, "%s %q came before the key exchange; add the secure plugin to the dialing peer", m.Type, clip(m.ServiceMethod))
	}
	hello := bytes.Clone(m.Payload)
	answer := func(st *tp.Status, payload []byte) error {
		m.Reset()
		m.Type, m.ServiceMethod, m.Status, m.Payload = socket.TypeReply, ServiceMethod, st, payload
		if err := sess.WriteHandshake(m); err != nil && st == nil {
			return err
		}
		if st != nil {
			return st
		}
		return nil
	}
	if len(hello) != 2+pubLen || hello[0] != version {
		return answer(refused(tp.CodeBadMessage, "the key exchange is malformed, or of another version"), nil)
	}
	flags := hello[1]
	if st := s.sameKeyFlag(flags); st != nil {
		return answer(st, nil)
	}
	if flags&flagWantsSig != 0 && s.cfg.Identity == nil {
		return answer(refused(tp.CodeFailedPrecondition, "the dialer asks this end to prove itself, and it has no Config.Identity"), nil)
	}
	if len(s.cfg.TrustDialers) > 0 && flags&flagSigns == 0 {
		return answer(refused(tp.CodeUnauthorized, "this end accepts only dialers that prove an Identity in its Config.TrustDialers"), nil)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return answer(tp.NewStatus(tp.CodeInternal, "secure: cannot make a key", err), nil)
	}
	head := append([]byte{version, s.flags(false)}, eph.PublicKey().Bytes()...)
	if s.cfg.Identity != nil {
		head = append(head, s.cfg.Identity.Public().(ed25519.PublicKey)...)
	}
	t2 := transcript(hello, head)
	k, st := s.derive(eph, hello[2:], t2, false)
	if st != nil {
		return answer(st, nil)
	}
	out := head
	if s.cfg.Identity != nil {
		out = append(out, ed25519.Sign(s.cfg.Identity, signed("accept", t2))...)
	}
	if err := answer(nil, append(out, mac(k.macOwn, t2)...)); err != nil {
		return err
	}
	// The dialer's proof.
	if err := sess.ReadHandshake(m, s.cfg.Timeout); err != nil {
		return err
	}
	p := m.Payload
	if m.Type != socket.TypePush || m.ServiceMethod != ServiceMethod || len(p) < macLen {
		return refused(tp.CodeBadMessage, "the dialer's key exchange proof is missing or malformed")
	}
	signs := flags&flagSigns != 0
	if signs != (len(p) == pubLen+sigLen+macLen) || !signs && len(p) != macLen {
		return refused(tp.CodeBadMessage, "the dialer's key exchange proof is malformed")
	}
	var pub ed25519.PublicKey
	if signs {
		pub = p[:pubLen]
	}
	t3 := transcript(t2, pub)
	if !hmac.Equal(p[len(p)-macLen:], mac(k.macPeer, t3)) {
		return refused(tp.CodeUnauthorized, "the dialer cannot prove it holds the session keys: another Config.Key, a replay, or a peer in the middle")
	}
	verified := s.cfg.Key != nil
	if len(s.cfg.TrustDialers) > 0 {
		if !trusted(s.cfg.TrustDialers, pub) || !ed25519.Verify(pub, signed("dial", t3), p[pubLen:pubLen+sigLen]) {
			return refused(tp.CodeUnauthorized, "the dialer does not prove a key in Config.TrustDialers")
		}
		verified = true
	}
	return sess.SetSealer(k, verified)
}

// sameKeyFlag checks that both ends have a Key, or neither: the exchange
// would fail anyway, but this says why.
func (s *Plugin) sameKeyFlag(peerFlags byte) *tp.Status {
	if mine, theirs := s.cfg.Key != nil, peerFlags&flagKey != 0; mine != theirs {
		return refused(tp.CodeFailedPrecondition, "one end has Config.Key and the other has not; give both the same")
	}
	return nil
}

func trusted(keys []ed25519.PublicKey, pub ed25519.PublicKey) bool {
	return slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return k.Equal(pub) })
}

func transcript(parts ...[]byte) []byte {
	h := sha256.New()
	h.Write([]byte("tp secure v1"))
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

func signed(role string, t []byte) []byte {
	return append([]byte("tp secure v1 "+role+" "), t...)
}

func mac(key, t []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(t)
	return h.Sum(nil)
}

// derive makes the connection's keys from the X25519 secret, the shared
// Key and the transcript so far: one AES key per direction, and one MAC
// key per end.
func (s *Plugin) derive(eph *ecdh.PrivateKey, peerPub, t2 []byte, dialer bool) (*keys, *tp.Status) {
	pub, err := ecdh.X25519().NewPublicKey(peerPub)
	if err != nil {
		return nil, refused(tp.CodeBadMessage, "the peer's public key is malformed")
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, refused(tp.CodeBadMessage, "key agreement failed: the peer's public key is degenerate")
	}
	prk, err := hkdf.Extract(sha256.New, shared, s.cfg.Key)
	if err != nil {
		return nil, tp.NewStatus(tp.CodeInternal, "secure: key derivation failed", err)
	}
	expand := func(label string) []byte {
		b, err := hkdf.Expand(sha256.New, prk, label+string(t2), 32)
		if err != nil {
			panic(err) // only for lengths past 255 hashes
		}
		return b
	}
	k := &keys{
		macOwn:  expand("tp secure v1 mac dialer"),
		macPeer: expand("tp secure v1 mac acceptor"),
	}
	d2a, a2d := expand("tp secure v1 dialer to acceptor"), expand("tp secure v1 acceptor to dialer")
	if !dialer {
		k.macOwn, k.macPeer = k.macPeer, k.macOwn
		d2a, a2d = a2d, d2a
	}
	if k.seal, err = newAEAD(d2a); err == nil {
		k.open, err = newAEAD(a2d)
	}
	if err != nil {
		return nil, tp.NewStatus(tp.CodeInternal, "secure: cannot make the cipher", err)
	}
	return k, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// keys are one connection's: AES-GCM per direction, with the nonce a
// counter of messages sealed, and a window of the counters opened.
type keys struct {
	seal, open      cipher.AEAD
	macOwn, macPeer []byte
	sealed          atomic.Uint64

	mu   sync.Mutex
	seen window
}

// Seal seals m in place if it is marked with MetaKey, or is a handshake
// message, bound to its header: the payload becomes the counter (8
// bytes, the nonce's last 8) and the ciphertext. It implements tp.Sealer.
func (k *keys) Seal(m *socket.Message, handshake bool) error {
	if !handshake && m.Meta.Get(MetaKey) == "" {
		return nil
	}
	if st := k.sealBody(m); st != nil {
		return st
	}
	return nil
}

func (k *keys) sealBody(m *socket.Message) *tp.Status {
	n := k.sealed.Add(1)
	if n > maxSealed {
		k.sealed.Store(maxSealed + 1) // stays past the bound, far from wrapping
		return errWornOut
	}
	m.Meta.Set(MetaKey, "1")
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], n)
	// The header: the counter, and the time the sender will wait (0:
	// no deadline), which the receiver's deadline may not pass.
	var budget time.Duration
	if !m.Deadline.IsZero() {
		budget = max(time.Until(m.Deadline), 1)
	}
	buf := make([]byte, headerLen, headerLen+len(m.Payload)+512)
	binary.BigEndian.PutUint64(buf, n)
	binary.BigEndian.PutUint64(buf[8:], uint64(budget))
	buf, err := m.MarshalBody(buf)
	if err != nil {
		return tp.NewStatus(tp.CodeInvalidArgument, "secure: cannot encode the body to seal", err)
	}
	m.Payload = k.seal.Seal(buf[:headerLen], nonce[:], buf[headerLen:], append(additional(m), buf[8:headerLen]...))
	m.Body = nil
	return nil
}

// headerLen is the sealed payload's header: the counter and the budget.
const headerLen = 16

// Open checks and opens m in place if it is marked as sealed; a
// handshake message must be. A message opened before on the connection
// is discarded (tp.ErrDiscard): its original was answered. It implements
// tp.Sealer.
func (k *keys) Open(m *socket.Message, handshake bool) error {
	if m.Meta.Get(MetaKey) == "" {
		if handshake {
			return refused(tp.CodeBadMessage, "a handshake message came unsealed after the key exchange: tampered with on the way")
		}
		return nil
	}
	switch st := k.openBody(m); {
	case st == errReplay && !handshake:
		return tp.ErrDiscard
	case st != nil:
		return st
	}
	return nil
}

func (k *keys) openBody(m *socket.Message) *tp.Status {
	p := m.Payload
	if len(p) < headerLen+k.open.Overhead() {
		return errAuth
	}
	n := binary.BigEndian.Uint64(p)
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], n)
	plain, err := k.open.Open(p[headerLen:headerLen], nonce[:], p[headerLen:], append(additional(m), p[8:headerLen]...))
	if err != nil {
		return errAuth
	}
	// The deadline on the wire is not sealed: a relay may shorten it, as
	// it may delay the message, but not take it past the sender's.
	if budget := time.Duration(binary.BigEndian.Uint64(p[8:])); budget > 0 {
		if limit := time.Now().Add(budget); m.Deadline.IsZero() || m.Deadline.After(limit) {
			m.Deadline = limit
		}
	}
	k.mu.Lock()
	fresh := k.seen.accept(n)
	k.mu.Unlock()
	if !fresh {
		return errReplay
	}
	m.Payload = plain // decrypted in place, in the message's own buffer
	return nil
}

// maxSealed bounds the messages one direction of a connection seals, so
// the counter in the nonce never wraps.
const maxSealed = 1 << 62

var (
	errWornOut = tp.NewStatus(tp.CodeFailedPrecondition, "secure: this connection has sealed all the messages its keys allow; reconnect for new keys", nil)
	errAuth    = tp.NewStatus(tp.CodeBadMessage, "secure: the message fails authentication: tampered with on the way, or sealed under other keys", nil)
	errReplay  = tp.NewStatus(tp.CodeBadMessage, fmt.Sprintf("secure: the message was opened before on this connection (a replay), or was sealed more than %d messages before one already read", windowSize), nil)
)

// additional is what a sealed body is bound to: every header field the
// receiver acts on, the meta in a canonical order.
func additional(m *socket.Message) []byte {
	ad := make([]byte, 0, 64+len(m.ServiceMethod))
	ad = append(ad, byte(m.Type), m.BodyCodec)
	ad = binary.BigEndian.AppendUint32(ad, m.Seq)
	ad = appendString(ad, m.ServiceMethod)
	if m.Status.OK() {
		ad = append(ad, 0)
	} else {
		ad = append(ad, 1)
		ad = binary.AppendVarint(ad, int64(m.Status.Code()))
		ad = appendString(ad, m.Status.Msg())
		ad = appendString(ad, m.Status.CauseText())
	}
	pairs := make([][2]string, 0, m.Meta.Len())
	m.Meta.Range(func(k, v string) bool {
		pairs = append(pairs, [2]string{k, v})
		return true
	})
	slices.SortFunc(pairs, func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
	for _, kv := range pairs {
		ad = appendString(appendString(ad, kv[0]), kv[1])
	}
	return ad
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// windowSize is how far out of order sealed messages may arrive: seals
// and writes of concurrent senders interleave, and so do the opens of
// concurrent handlers.
const windowSize = 1 << 14

// window is a sliding window of the counters opened (as IPsec's and
// WireGuard's): counter c, within windowSize of the highest, is bit
// c%windowSize.
type window struct {
	top  uint64
	bits [windowSize / 64]uint64
}

// accept records counter c and reports whether it is new: not 0, not
// seen, not older than the window.
func (w *window) accept(c uint64) bool {
	switch {
	case c == 0:
		return false
	case c > w.top:
		if c-w.top >= windowSize {
			clear(w.bits[:])
		} else {
			for i := w.top + 1; i < c; i++ {
				w.bits[i/64%(windowSize/64)] &^= 1 << (i % 64)
			}
		}
		w.top = c
	case w.top-c >= windowSize:
		return false
	case w.bits[c/64%(windowSize/64)]&(1<<(c%64)) != 0:
		return false
	}
	w.bits[c/64%(windowSize/64)] |= 1 << (c % 64)
	return true
}

// PreWriteCall marks a CALL for sealing with All; the connection's
// sealer seals it after the last write hook.
func (s *Plugin) PreWriteCall(c tp.WriteCtx) error {
	m := c.Output()
	if s.cfg.All {
		m.Meta.Set(MetaKey, "1")
	}
	if cc, ok := c.(*tp.CallCmd); ok && m.Meta.Get(MetaKey) != "" {
		// Remember it: its reply must come sealed too.
		cc.SetContext(context.WithValue(cc.Context(), sealedCall{}, true))
	}
	return nil
}

// sealedCall marks, in a call's context, a CALL sent sealed.
type sealedCall struct{}

// PreWritePush marks a PUSH for sealing with All.
func (s *Plugin) PreWritePush(c tp.WriteCtx) error {
	if s.cfg.All {
		c.Output().Meta.Set(MetaKey, "1")
	}
	return nil
}

// PreWriteReply marks for sealing the reply to a sealed CALL, an error
// too.
func (s *Plugin) PreWriteReply(c tp.WriteCtx) error {
	if in, ok := c.(tp.ReadCtx); ok && in.Input().Meta.Get(MetaKey) != "" {
		c.Output().Meta.Set(MetaKey, "1")
	}
	return nil
}

// PreReadReplyBody refuses an unsealed reply to a sealed CALL (a sealed
// one was opened as it was read).
func (s *Plugin) PreReadReplyBody(c tp.ReadCtx) error {
	if in := c.Input(); c.Context().Value(sealedCall{}) != nil && in.Meta.Get(MetaKey) == "" {
		// Someone between stripped the seal, or the peer could not seal
		// (it lacks the plugin): either way, nothing here can be trusted.
		if in.Status.OK() {
			return errUnsealedReply
		}
		return tp.NewStatus(tp.CodeBadMessage, "secure: a sealed call got an unsealed error reply, which cannot be trusted: "+clip(in.Status.Error()), nil)
	}
	return nil
}

var errUnsealedReply = tp.NewStatus(tp.CodeBadMessage, "secure: a sealed call got a reply that is not sealed: tampered with on the way", nil)

// clip shortens text the peer sent before it goes into an error.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// Route returns a plugin for RouteCall, RoutePush or SubRoute whose
// routes take only sealed messages (their replies are sealed, as every
// reply to a sealed CALL is). The plugin itself must be on the peer.
func (s *Plugin) Route() tp.Plugin { return guard{} }

type guard struct{}

func (guard) Name() string { return "secure-route" }

func (guard) PreReadCallBody(c tp.ReadCtx) error { return require(c) }
func (guard) PreReadPushBody(c tp.ReadCtx) error { return require(c) }

func require(c tp.ReadCtx) *tp.Status {
	if c.Input().Meta.Get(MetaKey) == "" {
		return tp.NewStatus(tp.CodeUnauthorized, fmt.Sprintf("secure: %q takes only sealed messages; send with secure.WithSecure()", clip(c.Input().ServiceMethod)), nil)
	}
	return nil
}
