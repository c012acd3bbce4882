package tp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
)

// PeerConfig configures a Peer. The zero value works: a client with the
// default proto (raw), body codec (json) and limits. NewPeer reports
// invalid values, every one of them, as one error.
type PeerConfig struct {
	// Network is "tcp" (the default), "tcp4", "tcp6" or "unix".
	Network string
	// ListenAddr is the address ListenAndServe listens on.
	ListenAddr string
	// TLS, when set, wraps listened and dialed connections in TLS. A
	// dialing peer whose config has no ServerName gets the dialed host.
	TLS *tls.Config

	// Dialer, when set, makes the connections Dial and every redial use,
	// for transports other than TCP and unix sockets (or a proxy, or an
	// in-memory pipe); it must end by ctx. nil means a net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds each dial attempt, TLS handshake included (the
	// peer's hello then has HandshakeTimeout); 0 means 15 seconds.
	DialTimeout time.Duration
	// RedialTimes is how often a dialed session whose connection breaks is
	// redialed before it gives up: 0 never, negative forever. Dial tries a
	// first connection that reaches nobody as often, within its context.
	RedialTimes int
	// RedialInterval is the pause between redial attempts; 0 means 100 ms.
	RedialInterval time.Duration

	// BodyCodec is the id of the default body codec, such as
	// codec.ProtobufID (WithBodyCodec takes the same ids per message), and
	// the one codec routes take unless tp.Codecs names more; 0 means
	// codec.JSONID.
	BodyCodec byte
	// Proto frames messages; nil means rawproto, the compact binary proto.
	Proto socket.ProtoFunc
	// Socket tunes every connection: read limit, buffers, TCP options.
	Socket socket.Config

	// SessionAge closes a session this long after its connection was made
	// (its PostDial or PostAccept hooks count); 0 means never.
	SessionAge time.Duration
	// ContextAge bounds every call and every handler that has no earlier
	// deadline; 0 means no bound beyond the caller's context.
	ContextAge time.Duration

	// HandshakeTimeout closes a session whose peer sends nothing at all
	// this long after connecting. Every tp peer sends a hello frame at
	// once, so this only drops connections that never speak. 0 means
	// 10 seconds; negative means no limit.
	HandshakeTimeout time.Duration
	// MaxHandshakes caps the accepted connections still in their
	// PostAccept hooks (a credential or key exchange, say): past it a new
	// connection is closed at once. 0 means 256.
	MaxHandshakes int
	// HandshakeReadLimit is the largest frame read during the PostDial and
	// PostAccept hooks, before anyone is authenticated; the socket's read
	// limit applies once the session serves. 0 means 16 KiB.
	HandshakeReadLimit int
	// MaxSessions caps the sessions a peer holds; the excess is refused:
	// an accepted connection gets a close notice with CodeOverloaded, a
	// dial fails with it. 0 means no cap.
	MaxSessions int
	// MaxPendingCalls caps the calls waiting for replies on one session;
	// past it Call fails at once with CodeOverloaded. 0 means no cap.
	MaxPendingCalls int
	// MaxSessionHandlers caps the CALLs and PUSHes one connection may have
	// in handlers (queued or running): past it they are refused with
	// CodeOverloaded, so one peer, one that sends and never reads its
	// replies say, cannot take the whole pool. 0 means PoolSize/8, at
	// least 1024.
	MaxSessionHandlers int
	// MaxStreams caps the streams the peer may have open on one
	// connection: past it, an OPEN is answered with CodeOverloaded. 0
	// means 1024.
	MaxStreams int
	// StreamWindow is how many bytes of frames each stream may have in
	// flight towards this peer, unread: the credit its reader grants as it
	// consumes, and so the memory one stream can hold here (plus one
	// frame). 0 means 256 KiB; at least InitialStreamWindow.
	StreamWindow int

	// PoolSize is how many handlers may run at once; 0 means 10,000. A
	// CALL that finds the pool full is answered at once with
	// CodeOverloaded, and such a PUSH is dropped and logged.
	PoolSize int
	// ShutdownTimeout bounds how long Close waits for handlers in flight;
	// 0 means 30 seconds.
	ShutdownTimeout time.Duration

	// TrustedProxies are the networks whose peers may tell the caller's IP
	// in the X-Real-IP meta (RealIPKey): the proxies in front of this peer.
	// From anyone else the meta is ignored, and RealIP is the remote
	// address. nil trusts nobody.
	TrustedProxies []netip.Prefix

	// Logger receives the peer's logs; nil means slog.Default().
	Logger *slog.Logger
	// PrintDetail logs one line per message: direction, type, service
	// method, seq, cost, size, status, meta and body.
	PrintDetail bool
	// SlowCallThreshold logs a warning for each call, sent or served, that
	// takes longer; 0 turns it off.
	SlowCallThreshold time.Duration
	// CountTime makes CallCmd.CostTime report how long each call took.
	// It is implied by PrintDetail and SlowCallThreshold.
	CountTime bool

	// Naming turns the Go names of registered structs, methods and
	// functions into routes. The zero value is HTTPNaming ("/math/add");
	// RPCNaming gives "Math.Add"; any other is the application's.
	Naming Naming
}

// settings is a PeerConfig with its defaults applied and checked.
type settings struct {
	PeerConfig
	countTime bool
}

// settle applies the defaults and checks every field. The settings it
// returns are usable even when the config is not (a peer made from a bad
// config must still Close cleanly); the error names every bad field.
func (c PeerConfig) settle() (settings, *Status) {
	s := settings{PeerConfig: c}
	var bad []string
	if s.Network == "" {
		s.Network = "tcp"
	}
	switch s.Network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		if s.Dialer == nil { // a custom dialer knows its own networks
			bad = append(bad, fmt.Sprintf("Network %q: want tcp, tcp4, tcp6 or unix (or set Dialer)", s.Network))
		}
	}
	if s.DialTimeout <= 0 {
		s.DialTimeout = 15 * time.Second
	}
	if s.HandshakeTimeout == 0 {
		s.HandshakeTimeout = 10 * time.Second
	}
	if s.RedialInterval <= 0 {
		s.RedialInterval = 100 * time.Millisecond
	}
	if s.BodyCodec == 0 {
		s.BodyCodec = codec.JSONID
	}
	if _, err := codec.ByID(s.BodyCodec); err != nil {
		bad = append(bad, fmt.Sprintf("BodyCodec %q: %v", s.BodyCodec, err))
		s.BodyCodec = codec.JSONID
	}
	if s.Proto == nil {
		s.Proto = rawproto.New()
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxSessions", s.MaxSessions}, {"MaxPendingCalls", s.MaxPendingCalls}, {"PoolSize", s.PoolSize}, {"MaxSessionHandlers", s.MaxSessionHandlers}, {"MaxStreams", s.MaxStreams}} {
		if f.v < 0 {
			bad = append(bad, fmt.Sprintf("%s %d: want 0 (the default) or more", f.name, f.v))
		}
	}
	if s.PoolSize <= 0 {
		s.PoolSize = 10000
	}
	if s.MaxHandshakes <= 0 {
		s.MaxHandshakes = 256
	}
	if s.HandshakeReadLimit <= 0 {
		s.HandshakeReadLimit = 16 << 10
	}
	if s.MaxSessionHandlers <= 0 {
		s.MaxSessionHandlers = max(s.PoolSize/8, 1024)
	}
	if s.MaxStreams <= 0 {
		s.MaxStreams = 1024
	}
	switch {
	case s.StreamWindow == 0:
		s.StreamWindow = 256 << 10
	case s.StreamWindow < InitialStreamWindow:
		bad = append(bad, fmt.Sprintf("StreamWindow %d: want 0 (256 KiB) or at least InitialStreamWindow (%d)", s.StreamWindow, InitialStreamWindow))
		s.StreamWindow = InitialStreamWindow
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = 30 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	s.countTime = s.CountTime || s.PrintDetail || s.SlowCallThreshold > 0
	if len(bad) > 0 {
		return s, NewStatus(CodeInvalidArgument, "bad PeerConfig: "+strings.Join(bad, "; "), nil)
	}
	return s, nil
}
