// Package proxy forwards the calls and pushes no route serves to another
// peer, chosen per message, without decoding their bodies.
//
//	backend, _ := gateway.Dial(context.Background(), "10.0.0.2:9090")
//	gateway, err := tp.NewPeer(cfg, proxy.New(func(*proxy.Label) proxy.Forwarder { return backend }))
//
// A forwarded CALL carries the caller's meta, body (in its codec, as is)
// and deadline; its reply's status, meta and body come back the same way.
// Each hop adds ViaKey to the meta ("proxy-id/session-id#seq" of the
// message it got) so a call can be followed across proxies, and sets
// tp.RealIPKey to the caller's IP as this hop knows it (RealIP: the meta
// of a proxy in PeerConfig.TrustedProxies, else the remote address), so a
// client cannot choose it. A
// message that has passed this proxy already (proxies forwarding to each
// other) or more than MaxHops proxies is refused with
// CodeFailedPrecondition, so a loop ends at once. With the tracing plugin on
// every peer, the hops also form one trace.
//
// Streams no route serves are forwarded too, to a Forwarder that can open
// them (a *tp.Session can): the proxy opens one to the backend with the
// opener's meta and codec and copies messages both ways, undecoded, with
// each side's half-close, trailer, reset and cancel.
//
// The plugin sets the peer's unknown-call, unknown-push and unknown-stream
// handlers; routes the peer serves itself are not forwarded.
package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/socket"
)

// ViaKey is the meta key of the forwarding chain: one value per hop.
const ViaKey = "tp-via"

// Forwarder takes a forwarded message; *tp.Session is one.
type Forwarder interface {
	Call(ctx context.Context, serviceMethod string, arg, result any, settings ...tp.MessageSetting) *tp.CallCmd
	Push(ctx context.Context, serviceMethod string, arg any, settings ...tp.MessageSetting) error
}

// StreamForwarder is a Forwarder that takes streams too.
type StreamForwarder interface {
	Forwarder
	OpenStream(ctx context.Context, serviceMethod string, settings ...tp.MessageSetting) (*tp.Stream, error)
}

// Label describes a message or stream to forward, for the route function.
type Label struct {
	SessionID     string // the session it came on
	RealIP        string // the original caller's IP
	ServiceMethod string
	IsCall        bool
	IsStream      bool
}

// Plugin is the plugin.
type Plugin struct {
	route func(*Label) Forwarder
	id    string // this proxy's mark in the chain

	// MaxHops is how many proxies a message may have passed before this
	// one; 0 means DefaultMaxHops. Set it before serving.
	MaxHops int
}

// DefaultMaxHops is the hop limit when Plugin.MaxHops is 0.
const DefaultMaxHops = 8

var _ tp.PostNewPeerPlugin = (*Plugin)(nil)

// New returns the plugin. route picks where each message goes; nil means
// nowhere (a CALL is answered with CodeNotFound, a PUSH dropped).
func New(route func(*Label) Forwarder) *Plugin {
	var id [6]byte
	rand.Read(id[:])
	return &Plugin{route: route, id: hex.EncodeToString(id[:])}
}

// Name implements tp.Plugin.
func (p *Plugin) Name() string { return "proxy" }

// PostNewPeer makes the proxy the peer's unknown-call and unknown-push
// handler.
func (p *Plugin) PostNewPeer(peer *tp.Peer) error {
	peer.SetUnknownCall(p.call)
	peer.SetUnknownPush(p.push)
	peer.Router().SetUnknownStream(p.stream)
	return nil
}

// stream forwards a stream: both ways, until either side ends it.
func (p *Plugin) stream(ctx tp.StreamCtx, in *tp.Stream) error {
	fwd, settings, st := p.prepare(streamBody{ctx, in.BodyCodec()}, false)
	if st != nil {
		return st
	}
	sf, ok := fwd.(StreamForwarder)
	if !ok {
		return tp.NewStatus(tp.CodeUnsupported, fmt.Sprintf("proxy: the forwarder for %q takes no streams", ctx.ServiceMethod()), nil)
	}
	out, err := sf.OpenStream(in.Context(), ctx.ServiceMethod(), settings...)
	if err != nil {
		return err
	}
	defer out.Close()
	// Onward: what the opener sends, then its half-close and trailer.
	go func() {
		var b []byte
		for {
			err := in.Recv(&b)
			if err == io.EOF {
				copyMeta(out.SetTrailer, in.Trailer())
				out.CloseSend()
				return
			}
			if err != nil {
				out.Reset(err)
				return
			}
			if err := out.Send(b); err != nil {
				in.Reset(err)
				return
			}
		}
	}()
	// Back: what the backend sends; its end is this handler's.
	var b []byte
	for {
		err := out.Recv(&b)
		if err == io.EOF {
			copyMeta(in.SetTrailer, out.Trailer())
			return nil
		}
		if err != nil {
			return err
		}
		if err := in.Send(b); err != nil {
			return err
		}
	}
}

func copyMeta(set func(k, v string), m *tp.Meta) {
	m.Range(func(k, v string) bool {
		set(k, v)
		return true
	})
}

// streamBody is a stream's opening as prepare reads it.
type streamBody struct {
	tp.StreamCtx
	codec byte
}

func (s streamBody) InputBodyCodec() byte { return s.codec }

func (p *Plugin) call(ctx tp.UnknownCallCtx) (any, error) {
	fwd, settings, st := p.prepare(ctx, true)
	if st != nil {
		return nil, st
	}
	var reply socket.RawBody
	body := &socket.RawBody{Codec: ctx.InputBodyCodec(), Bytes: ctx.InputBody()}
	cmd := fwd.Call(ctx.Context(), ctx.ServiceMethod(), body, &reply, settings...)
	cmd.InputMeta().Range(func(k, v string) bool {
		ctx.AddMeta(k, v)
		return true
	})
	if err := cmd.Err(); err != nil {
		return nil, err
	}
	ctx.SetBodyCodec(reply.Codec)
	return &reply, nil
}

func (p *Plugin) push(ctx tp.UnknownPushCtx) error {
	fwd, settings, st := p.prepare(ctx, false)
	if st != nil {
		return st
	}
	body := &socket.RawBody{Codec: ctx.InputBodyCodec(), Bytes: ctx.InputBody()}
	return fwd.Push(ctx.Context(), ctx.ServiceMethod(), body, settings...)
}

// rawBody is what UnknownCallCtx and UnknownPushCtx share.
type rawBody interface {
	tp.PushCtx
	InputBodyCodec() byte
}

// checkChain refuses a message that has passed this proxy already, or too
// many proxies.
func (p *Plugin) checkChain(via []string) *tp.Status {
	max := p.MaxHops
	if max <= 0 {
		max = DefaultMaxHops
	}
	if len(via) >= max {
		return tp.NewStatus(tp.CodeFailedPrecondition, fmt.Sprintf("proxy: the message has passed %d proxies, the limit", len(via)), nil)
	}
	for _, hop := range via {
		if strings.HasPrefix(hop, p.id+"/") {
			return tp.NewStatus(tp.CodeFailedPrecondition, "proxy: the message has passed this proxy already: a forwarding loop", nil)
		}
	}
	return nil
}

// prepare picks the forwarder and the setting that carries the meta, the
// body codec and the chain.
func (p *Plugin) prepare(ctx rawBody, isCall bool) (Forwarder, []tp.MessageSetting, *tp.Status) {
	_, isStream := ctx.(streamBody)
	label := &Label{SessionID: ctx.Session().ID(), RealIP: ctx.RealIP(), ServiceMethod: ctx.ServiceMethod(), IsCall: isCall, IsStream: isStream}
	if st := p.checkChain(ctx.InputMeta().Values(ViaKey)); st != nil {
		return nil, nil, st
	}
	fwd := p.route(label)
	if fwd == nil {
		return nil, nil, tp.NewStatus(tp.CodeNotFound, fmt.Sprintf("proxy: nowhere to forward %q", label.ServiceMethod), nil)
	}
	forward := func(m *socket.Message) {
		ctx.InputMeta().Range(func(k, v string) bool {
			m.Meta.Add(k, v)
			return true
		})
		m.Meta.Add(ViaKey, p.id+"/"+label.SessionID+"#"+strconv.FormatUint(uint64(ctx.Seq()), 10))
		// What this hop knows, whatever the message said: RealIP trusts the
		// meta only from the proxies the peer is configured to trust.
		m.Meta.Set(tp.RealIPKey, label.RealIP)
		m.BodyCodec = ctx.InputBodyCodec()
	}
	return fwd, []tp.MessageSetting{forward}, nil
}
