// Package httpfront lets any HTTP client call a tp peer's handlers: curl,
// a browser's fetch, a monitoring probe, a program in another language.
// It needs no code generation and no second server: a Front is an
// http.Handler to mount on any ServeMux path, and Listen serves HTTP on
// the tp listener's own port.
//
//	POST /math/add   Content-Type: application/json   [1, 2]   →  200 3
//
// The request's path (after Options.Prefix) is the route. A POST to a
// CALL route waits for the reply; a POST to a PUSH route is answered 202
// Accepted once the push is handed to the peer. A GET calls with its query
// string as a form body (codec "form"), for handlers that take forms.
//
// Bodies keep their encoding end to end: the request's Content-Type picks
// the body codec, and the reply comes in the same codec, or in the one the
// Accept header asks for:
//
//	application/json                   json
//	application/x-protobuf             protobuf (also application/protobuf)
//	application/x-www-form-urlencoded  form
//	text/plain                         plain
//
// A route takes the codecs tp.Codecs gave it (the peer's codec alone by
// default); another is refused with 415.
//
// Headers: a request header Tp-Meta-<Key> becomes the meta <Key> (in Go's
// canonical header form: "Tp-Meta-user-id" gives "User-Id"), and the
// reply's meta comes back as Tp-Meta-<Key> headers. The W3C trace headers
// (traceparent, tracestate) pass as the meta of the same names, so
// plugin/tracing continues the caller's trace. Tp-Timeout (a Go duration:
// 250ms, 2s) bounds the handler's context, as does the request's own
// context (a client that goes away cancels the call). The caller's IP
// reaches RealIP: the host of the request's remote address, or the
// X-Real-IP header from a proxy in Options.TrustedProxies.
//
// Errors are a JSON body {"code": <tp code>, "message": "..."} with the
// status:
//
//	tp code                                        HTTP status
//	NotFound                                       404
//	BadMessage, InvalidArgument, FailedPrecondition 400
//	Unauthorized                                   401
//	TooLarge (and a body past MaxBody)             413
//	Unsupported (a codec the route does not take)  415
//	Canceled                                       499 (the client went away)
//	Internal, Unknown                              500
//	ConnClosed, DialFailed, WriteFailed            502
//	Overloaded                                     503, Retry-After: 1
//	ShuttingDown                                   503, Retry-After: 1
//	Timeout                                        504
//	a handler's own code in 400–599                that code
//	any other code of a handler                    500
//
// The front talks to the peer over a session of its own, in memory, so
// every plugin of the peer runs for HTTP calls as for tp calls: binder,
// overloader, metrics, tracing, and message hooks of your own. A plugin
// that authenticates sessions (plugin/auth's Checker) sees the front's
// session once: give the front the matching plugin in Options.Plugins
// (auth.NewBearer), and check HTTP callers per call with a hook reading
// the meta they send (Tp-Meta-Authorization, say).
package httpfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
)

// MetaPrefix starts the headers that carry meta.
const MetaPrefix = "Tp-Meta-"

// TimeoutHeader bounds a call, as a Go duration.
const TimeoutHeader = "Tp-Timeout"

// DefaultMaxBody bounds a request's body when Options.MaxBody is 0.
const DefaultMaxBody = 4 << 20

// Options configures a Front.
type Options struct {
	// Prefix is cut from the request's path to give the route: with
	// Prefix "/api", POST /api/math/add calls /math/add.
	Prefix string
	// MaxBody bounds a request's body; a larger one is refused with 413
	// before it is read (by its Content-Length) or as soon as it passes
	// the bound. 0 means DefaultMaxBody.
	MaxBody int64
	// TrustedProxies are the HTTP proxies whose X-Real-IP header names the
	// caller.
	TrustedProxies []netip.Prefix
	// Plugins are the front's own, on its side of its session to the peer
	// (an auth.Bearer for a peer with an auth.Checker).
	Plugins []tp.Plugin
	// ReadHeaderTimeout bounds the reading of a request's headers by the
	// server Listen runs; 0 means 10 s. (A Front mounted on a server of
	// your own is bounded by that server's.)
	ReadHeaderTimeout time.Duration
}

// Front is the http.Handler. It is safe for concurrent use.
type Front struct {
	peer   *tp.Peer
	opts   Options
	client *tp.Peer // the front's end of its session to peer

	sess   atomic.Pointer[tp.Session] // the session requests use
	mu     sync.Mutex                 // for dialing it
	closed bool
}

// New returns a front for peer.
func New(peer *tp.Peer, opts Options) (*Front, error) {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	f := &Front{peer: peer, opts: opts}
	client, err := tp.NewPeer(tp.PeerConfig{
		Logger: peer.Logger(),
		Dialer: f.pipe,
	}, opts.Plugins...)
	if err != nil {
		return nil, fmt.Errorf("httpfront: %w", err)
	}
	f.client = client
	return f, nil
}

// pipe is the front's dialer: one end of an in-memory connection, whose
// other end the peer serves.
func (f *Front) pipe(ctx context.Context, _, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	go func() {
		if _, err := f.peer.ServeConn(frontConn{a}); err != nil {
			a.Close()
		}
	}()
	return b, nil
}

// frontConn is the peer's end: a tp.FrontConn, so the X-Real-IP meta the
// front sets is the caller's IP.
type frontConn struct{ net.Conn }

func (frontConn) FrontEnd() {}

// session returns the front's session to the peer, dialing it the first
// time and after it ended.
func (f *Front) session(ctx context.Context) (*tp.Session, error) {
	if s := f.sess.Load(); s != nil && s.Health() {
		return s, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, tp.NewStatus(tp.CodeShuttingDown, "the HTTP front is closed", nil)
	}
	old := f.sess.Load()
	if old != nil && old.Health() {
		return old, nil // another request dialed it meanwhile
	}
	s, err := f.client.Dial(ctx, "peer")
	if err != nil {
		return nil, err
	}
	if old != nil {
		old.Close()
	}
	f.sess.Store(s)
	return s, nil
}

// Close ends the front's session to the peer. Requests served after it
// fail with 503.
func (f *Front) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return f.client.Close()
}

// codecs maps media types to body codecs, and back.
var codecs = map[string]byte{
	"application/json":                  codec.JSONID,
	"application/x-protobuf":            codec.ProtobufID,
	"application/protobuf":              codec.ProtobufID,
	"application/x-www-form-urlencoded": codec.FormID,
	"text/plain":                        codec.PlainID,
}

func mediaType(id byte) string {
	switch id {
	case codec.JSONID:
		return "application/json"
	case codec.ProtobufID:
		return "application/x-protobuf"
	case codec.FormID:
		return "application/x-www-form-urlencoded"
	case codec.PlainID:
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// accepted returns the codec the Accept header prefers among those the
// front knows, or 0.
func accepted(accept string) byte {
	best, bestQ := byte(0), -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		if id, ok := codecs[mt]; ok && q > bestQ && q > 0 {
			best, bestQ = id, q
		}
	}
	return best
}

// ServeHTTP calls the route the request names.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, ok := strings.CutPrefix(r.URL.Path, f.opts.Prefix)
	if !ok || route == "" || route == "/" {
		writeError(w, tp.NewStatus(tp.CodeNotFound, fmt.Sprintf("no route in %q", r.URL.Path), nil))
		return
	}
	if !strings.HasPrefix(route, "/") {
		route = "/" + route
	}

	var id byte
	var body []byte
	switch r.Method {
	case http.MethodGet:
		id, body = codec.FormID, []byte(r.URL.RawQuery)
	case http.MethodPost:
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/json"
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || codecs[mt] == 0 {
			writeError(w, tp.NewStatus(tp.CodeUnsupported, fmt.Sprintf("Content-Type %q is not one of application/json, application/x-protobuf, application/x-www-form-urlencoded, text/plain", ct), nil))
			return
		}
		id = codecs[mt]
		if r.ContentLength > f.opts.MaxBody {
			writeError(w, tp.NewStatus(tp.CodeTooLarge, fmt.Sprintf("the body of %d bytes is over the limit of %d", r.ContentLength, f.opts.MaxBody), nil))
			return
		}
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, f.opts.MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeError(w, tp.NewStatus(tp.CodeTooLarge, fmt.Sprintf("the body is over the limit of %d bytes", f.opts.MaxBody), nil))
			} else {
				writeError(w, tp.NewStatus(tp.CodeBadMessage, "reading the body", err))
			}
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrorStatus(w, http.StatusMethodNotAllowed, tp.NewStatus(tp.CodeUnsupported, r.Method+" is not served: POST calls and pushes, GET calls with a form", nil))
		return
	}

	ctx := r.Context()
	if v := r.Header.Get(TimeoutHeader); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, tp.NewStatus(tp.CodeBadMessage, fmt.Sprintf("%s %q is not a positive Go duration (such as 250ms)", TimeoutHeader, v), nil))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}

	settings := make([]tp.MessageSetting, 0, 8)
	settings = append(settings, tp.WithBodyCodec(id))
	for key, vals := range r.Header {
		name, ok := strings.CutPrefix(key, MetaPrefix)
		if ok && name != "" {
			for _, v := range vals {
				settings = append(settings, tp.WithAddMeta(name, v))
			}
		}
	}
	for _, key := range []string{"traceparent", "tracestate"} {
		if v := r.Header.Get(key); v != "" {
			settings = append(settings, tp.WithSetMeta(key, v))
		}
	}
	if want := accepted(r.Header.Get("Accept")); want != 0 && want != id {
		c, _ := codec.ByID(want)
		settings = append(settings, tp.WithSetMeta(tp.AcceptCodecKey, c.Name()))
	}
	settings = append(settings, tp.WithSetMeta(tp.RealIPKey, f.realIP(r))) // last: no header replaces it

	sess, err := f.session(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	arg := &socket.RawBody{Codec: id, Bytes: body}
	if h, ok := f.peer.Router().Route(route); ok && !h.IsCall() {
		if err := sess.Push(ctx, route, arg, settings...); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var reply socket.RawBody
	cmd := sess.Call(ctx, route, arg, &reply, settings...)
	if err := cmd.Err(); err != nil {
		writeMeta(w, cmd.InputMeta())
		writeError(w, err)
		return
	}
	writeMeta(w, cmd.InputMeta())
	w.Header().Set("Content-Type", mediaType(reply.Codec))
	w.Header().Set("Content-Length", strconv.Itoa(len(reply.Bytes)))
	w.WriteHeader(http.StatusOK)
	w.Write(reply.Bytes)
}

// realIP is the caller's IP: the host of the request's remote address, or
// the X-Real-IP a trusted proxy set.
func (f *Front) realIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if claimed := r.Header.Get("X-Real-IP"); claimed != "" && len(f.opts.TrustedProxies) > 0 {
		if ip, err := netip.ParseAddr(host); err == nil {
			for _, p := range f.opts.TrustedProxies {
				if p.Contains(ip.Unmap()) {
					return claimed
				}
			}
		}
	}
	return host
}

func writeMeta(w http.ResponseWriter, m *tp.Meta) {
	m.Range(func(k, v string) bool {
		w.Header().Add(MetaPrefix+k, v)
		return true
	})
}

// HTTPStatus is the HTTP status the front answers a tp status with (see
// the package doc's table).
func HTTPStatus(code tp.Code) int {
	switch code {
	case tp.CodeOK:
		return http.StatusOK
	case tp.CodeNotFound:
		return http.StatusNotFound
	case tp.CodeBadMessage, tp.CodeInvalidArgument, tp.CodeFailedPrecondition:
		return http.StatusBadRequest
	case tp.CodeUnauthorized:
		return http.StatusUnauthorized
	case tp.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case tp.CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case tp.CodeCanceled:
		return 499
	case tp.CodeConnClosed, tp.CodeDialFailed, tp.CodeWriteFailed:
		return http.StatusBadGateway
	case tp.CodeOverloaded, tp.CodeShuttingDown:
		return http.StatusServiceUnavailable
	case tp.CodeTimeout:
		return http.StatusGatewayTimeout
	}
	if code >= 400 && code <= 599 {
		return int(code)
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error the front answers.
type ErrorBody struct {
	Code    tp.Code `json:"code"`
	Message string  `json:"message"`
}

func writeError(w http.ResponseWriter, err error) {
	writeErrorStatus(w, HTTPStatus(tp.CodeOf(err)), err)
}

func writeErrorStatus(w http.ResponseWriter, status int, err error) {
	code := tp.CodeOf(err)
	if code == tp.CodeOverloaded || code == tp.CodeShuttingDown {
		w.Header().Set("Retry-After", "1")
	}
	msg := err.Error()
	var st *tp.Status
	if errors.As(err, &st) {
		msg = st.Msg()
		if c := st.CauseText(); c != "" {
			msg += ": " + c
		}
	}
	b, _ := json.Marshal(ErrorBody{Code: code, Message: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
