package tp

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"time"

	"github.com/seed-a9a850dd/tp/status"
)

// A Plugin hooks stages of a peer's, session's and message's life. It
// implements Name and any of the hook interfaces below; the peer resolves
// which ones when the plugin is added, so a stage no plugin hooks costs
// nothing. A hook that returns an error aborts: at a message stage that
// message (a CALL is answered with it: a *Status keeps its code, any other
// error is CodeInternal), at a session stage the session, at a peer stage
// the operation that ran it. A plugin with a method named like a hook but
// of another signature panics when it is added, rather than be skipped.
type Plugin interface {
	Name() string
}

// Peer stages.
type (
	// PreNewPeerPlugin sees, and may change, the config before NewPeer
	// applies it.
	PreNewPeerPlugin interface {
		PreNewPeer(*PeerConfig) error
	}
	// PostNewPeerPlugin runs once NewPeer has built the peer.
	PostNewPeerPlugin interface {
		PostNewPeer(*Peer) error
	}
	// PostRegPlugin runs for each route registered; a status makes the
	// registration panic.
	PostRegPlugin interface {
		PostReg(*Handler) error
	}
	// PostListenPlugin runs when the peer starts listening.
	PostListenPlugin interface {
		PostListen(net.Addr) error
	}
	// PreClosePlugin runs first in Close, while the peer still serves
	// everyone, within ctx (the shutdown timeout): a plugin that announced
	// the peer somewhere (a registry) takes it out there, so new work goes
	// elsewhere before the peer starts refusing it. An error is logged and
	// joined to what Close returns; the close goes on.
	PreClosePlugin interface {
		PreClose(ctx context.Context) error
	}
)

// Session stages.
type (
	// SealingPlugin marks a plugin whose PostDial and PostAccept hooks set
	// the connection's Sealer (plugin/secure). Those hooks run before the
	// handshake hooks of every other plugin, whatever the order plugins
	// were added in, so what the others send (plugin/auth's credential)
	// is sealed.
	SealingPlugin interface {
		Plugin
		SetsSealer()
	}
	// PostDialPlugin runs after a dial, and after each redial, before the
	// session serves anything; it may talk to the peer first with
	// Session.WriteHandshake and ReadHandshake. A status closes the session
	// (a redial tries again), and the peer is told why.
	PostDialPlugin interface {
		PostDial(sess *Session, redial bool) error
	}
	// PostAcceptPlugin runs after a connection is accepted or handed to
	// ServeConn, before the session serves anything; it may talk to the
	// peer first with Session.WriteHandshake and ReadHandshake. A status
	// closes the session, and the peer is told why.
	PostAcceptPlugin interface {
		PostAccept(*Session) error
	}
	// StreamOpenPlugin runs when a stream opens, at both ends: at the
	// opener before the OPEN is sent (an error fails OpenStream), at the
	// other end before the handler runs (an error ends the stream, and
	// the opener gets it).
	StreamOpenPlugin interface {
		StreamOpen(*Stream) error
	}
	// StreamDonePlugin runs once for every stream a StreamOpen hook saw
	// or might have seen, when it ends, whatever the reason:
	// Stream.Err says it.
	StreamDonePlugin interface {
		StreamDone(*Stream)
	}
	// CallDonePlugin runs once for every call made, when its outcome is
	// known, whatever it is: a reply, a deadline, a cancel, a broken
	// connection, a refusal before sending. Use it, not the reply hooks,
	// to end what PreWriteCall began.
	CallDonePlugin interface {
		CallDone(*CallCmd)
	}
	// PostDisconnectPlugin runs once a session has closed for good, or
	// was refused: once for every session the PostDial or PostAccept hooks
	// saw, so plugins can pair the two.
	PostDisconnectPlugin interface {
		PostDisconnect(*Session)
	}
)

// WriteCtx is what write hooks see: the message about to go out, or just
// gone. Hooks may change its meta before it is written.
type WriteCtx interface {
	Session() *Session
	Output() *Message
	// Route names what the message belongs to on this end, for labels
	// (metrics, traces): the service method of a CALL or PUSH this end
	// sends, and for a REPLY the route that served the CALL, or "" when
	// the unknown handler (or no handler) took it, whatever name the
	// caller sent.
	Route() string
	// Context is the context of the send: the caller's for a CALL or PUSH,
	// the handler's for a REPLY.
	Context() context.Context
	// StartTime is when this end began the message's exchange: when Call
	// was made, or when the CALL being replied to was read. It is zero
	// unless PeerConfig.CountTime (or an option implying it) is set.
	StartTime() time.Time
}

// ReadCtx is what read hooks see of a message coming in.
type ReadCtx interface {
	Session() *Session
	// Route is as WriteCtx's: for a CALL or PUSH read, the route that
	// serves it ("" for the unknown handler, or before the lookup); for a
	// REPLY, the service method of the call it answers.
	Route() string
	// Input is the message as read. A PostRead...Header hook may change
	// its service method, before the route is looked up.
	Input() *Message
	// Body is the value the body decodes into: the handler's argument or
	// the call's result; nil before it is known.
	Body() any
	// Context is the handler's context for a CALL or PUSH, the caller's
	// for a REPLY.
	Context() context.Context
	// SetContext replaces the context the handler of a CALL or PUSH sees
	// (for a REPLY: the context the call's later hooks see); ctx must
	// derive from Context. Tracing plugins carry spans this way.
	SetContext(ctx context.Context)
	// StartTime is as WriteCtx's.
	StartTime() time.Time
}

// Write stages.
type (
	PreWriteCallPlugin interface {
		PreWriteCall(WriteCtx) error
	}
	PostWriteCallPlugin interface {
		PostWriteCall(WriteCtx) error
	}
	// PreWriteReplyPlugin runs before every reply is written, an error
	// reply too (its Output().Status is set). A status it returns goes to
	// the caller in the reply's place.
	PreWriteReplyPlugin interface {
		PreWriteReply(WriteCtx) error
	}
	PostWriteReplyPlugin interface {
		PostWriteReply(WriteCtx) error
	}
	PreWritePushPlugin interface {
		PreWritePush(WriteCtx) error
	}
	PostWritePushPlugin interface {
		PostWritePush(WriteCtx) error
	}
)

// Read stages. Hooks up to and including PostRead...Header belong to the
// peer; the body hooks of CALL and PUSH also run the plugins of the route's
// SubRoute group.
type (
	// PreReadHeaderPlugin runs before each frame is read, on the session's
	// read goroutine. A status closes the session.
	PreReadHeaderPlugin interface {
		PreReadHeader(*Session) error
	}
	PostReadCallHeaderPlugin interface {
		PostReadCallHeader(ReadCtx) error
	}
	PreReadCallBodyPlugin interface {
		PreReadCallBody(ReadCtx) error
	}
	PostReadCallBodyPlugin interface {
		PostReadCallBody(ReadCtx) error
	}
	PostReadPushHeaderPlugin interface {
		PostReadPushHeader(ReadCtx) error
	}
	PreReadPushBodyPlugin interface {
		PreReadPushBody(ReadCtx) error
	}
	PostReadPushBodyPlugin interface {
		PostReadPushBody(ReadCtx) error
	}
	PostReadReplyHeaderPlugin interface {
		PostReadReplyHeader(ReadCtx) error
	}
	PreReadReplyBodyPlugin interface {
		PreReadReplyBody(ReadCtx) error
	}
	PostReadReplyBodyPlugin interface {
		PostReadReplyBody(ReadCtx) error
	}
)

// plugins keeps, per hook, the plugins that implement it. It is immutable
// once built; a SubRoute group extends a copy of its parent's.
type plugins struct {
	all []Plugin

	preNewPeer  []PreNewPeerPlugin
	postNewPeer []PostNewPeerPlugin
	postReg     []PostRegPlugin
	postListen  []PostListenPlugin
	preClose    []PreClosePlugin

	postDial       []PostDialPlugin
	postAccept     []PostAcceptPlugin
	postDisconnect []PostDisconnectPlugin
	callDone       []CallDonePlugin
	streamOpen     []StreamOpenPlugin
	streamDone     []StreamDonePlugin

	preWriteCall   []PreWriteCallPlugin
	postWriteCall  []PostWriteCallPlugin
	preWriteReply  []PreWriteReplyPlugin
	postWriteReply []PostWriteReplyPlugin
	preWritePush   []PreWritePushPlugin
	postWritePush  []PostWritePushPlugin

	preReadHeader       []PreReadHeaderPlugin
	postReadCallHeader  []PostReadCallHeaderPlugin
	preReadCallBody     []PreReadCallBodyPlugin
	postReadCallBody    []PostReadCallBodyPlugin
	postReadPushHeader  []PostReadPushHeaderPlugin
	preReadPushBody     []PreReadPushBodyPlugin
	postReadPushBody    []PostReadPushBodyPlugin
	postReadReplyHeader []PostReadReplyHeaderPlugin
	preReadReplyBody    []PreReadReplyBodyPlugin
	postReadReplyBody   []PostReadReplyBodyPlugin
}

// with returns a copy of c extended by ps. Nil plugins panic.
func (c *plugins) with(ps ...Plugin) *plugins {
	n := &plugins{}
	if c != nil {
		*n = *c
	}
	for _, p := range ps {
		if p == nil {
			panic("tp: nil Plugin")
		}
		checkHooks(p)
		n.all = append(slices.Clip(n.all), p)
		add(&n.preNewPeer, p)
		add(&n.postNewPeer, p)
		add(&n.postReg, p)
		add(&n.postListen, p)
		add(&n.preClose, p)
		addHandshake(&n.postDial, p)
		addHandshake(&n.postAccept, p)
		add(&n.postDisconnect, p)
		add(&n.callDone, p)
		add(&n.streamOpen, p)
		add(&n.streamDone, p)
		add(&n.preWriteCall, p)
		add(&n.postWriteCall, p)
		add(&n.preWriteReply, p)
		add(&n.postWriteReply, p)
		add(&n.preWritePush, p)
		add(&n.postWritePush, p)
		add(&n.preReadHeader, p)
		add(&n.postReadCallHeader, p)
		add(&n.preReadCallBody, p)
		add(&n.postReadCallBody, p)
		add(&n.postReadPushHeader, p)
		add(&n.preReadPushBody, p)
		add(&n.postReadPushBody, p)
		add(&n.postReadReplyHeader, p)
		add(&n.preReadReplyBody, p)
		add(&n.postReadReplyBody, p)
	}
	return n
}

// hookTypes are the hook interfaces, by method name.
var hookTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, t := range []reflect.Type{
		reflect.TypeFor[PreNewPeerPlugin](), reflect.TypeFor[PostNewPeerPlugin](), reflect.TypeFor[PostRegPlugin](),
		reflect.TypeFor[PostListenPlugin](), reflect.TypeFor[PreClosePlugin](), reflect.TypeFor[PostDialPlugin](), reflect.TypeFor[PostAcceptPlugin](),
		reflect.TypeFor[CallDonePlugin](), reflect.TypeFor[PostDisconnectPlugin](),
		reflect.TypeFor[StreamOpenPlugin](), reflect.TypeFor[StreamDonePlugin](),
		reflect.TypeFor[PreWriteCallPlugin](), reflect.TypeFor[PostWriteCallPlugin](), reflect.TypeFor[PreWriteReplyPlugin](),
		reflect.TypeFor[PostWriteReplyPlugin](), reflect.TypeFor[PreWritePushPlugin](), reflect.TypeFor[PostWritePushPlugin](),
		reflect.TypeFor[PreReadHeaderPlugin](), reflect.TypeFor[PostReadCallHeaderPlugin](), reflect.TypeFor[PreReadCallBodyPlugin](),
		reflect.TypeFor[PostReadCallBodyPlugin](), reflect.TypeFor[PostReadPushHeaderPlugin](), reflect.TypeFor[PreReadPushBodyPlugin](),
		reflect.TypeFor[PostReadPushBodyPlugin](), reflect.TypeFor[PostReadReplyHeaderPlugin](), reflect.TypeFor[PreReadReplyBodyPlugin](),
		reflect.TypeFor[PostReadReplyBodyPlugin](),
	} {
		m[t.Method(0).Name] = t
	}
	return m
}()

// checkHooks panics if p has a method named like a hook that does not
// implement it: a hook with a wrong signature would otherwise never run.
func checkHooks(p Plugin) {
	t := reflect.TypeOf(p)
	for i := range t.NumMethod() {
		m := t.Method(i)
		if hook, ok := hookTypes[m.Name]; ok && !t.Implements(hook) {
			got := reflect.ValueOf(p).Method(i).Type()
			want := hook.Method(0).Type
			panic(fmt.Sprintf("tp: plugin %q has a method %s%s, which is not the hook %s: want %s%s",
				p.Name(), m.Name, got.String()[len("func"):], hook, m.Name, want.String()[len("func"):]))
		}
	}
}

// addHandshake is add, but puts a SealingPlugin before every plugin that
// is not one.
func addHandshake[H any](hooks *[]H, p Plugin) {
	h, ok := p.(H)
	if !ok {
		return
	}
	i := len(*hooks)
	if _, first := p.(SealingPlugin); first {
		i = 0
		for i < len(*hooks) {
			if _, ok := any((*hooks)[i]).(SealingPlugin); !ok {
				break
			}
			i++
		}
	}
	*hooks = slices.Insert(slices.Clip(*hooks), i, h)
}

// add appends p to hooks if it implements H. It clips first, so the append
// copies and a parent's slices never see its children's plugins.
func add[H any](hooks *[]H, p Plugin) {
	if h, ok := p.(H); ok {
		*hooks = append(slices.Clip(*hooks), h)
	}
}

// run calls each hook in turn and stops at the first that fails, with its
// error as a Status (CodeInternal for one that holds none). A nil *Status
// returned as an error is success, not a failure.
func run[H any, A any](hooks []H, call func(H, A) error, arg A) *Status {
	for _, h := range hooks {
		if err := call(h, arg); err != nil {
			if st := status.From(err, CodeInternal, "plugin failed"); st != nil {
				return st
			}
		}
	}
	return nil
}
