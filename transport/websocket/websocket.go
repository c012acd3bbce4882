// Package websocket carries tp sessions over WebSocket, through HTTP
// proxies and into browsers, with github.com/coder/websocket (kept up,
// context-aware, no dependencies of its own, and able to run in a
// browser's WebAssembly too; gorilla/websocket would do, but is larger and
// has no net.Conn adapter of its own).
//
// A server mounts Handler on any path of its mux, beside other handlers,
// so one port serves a web app and tp; or it serves a Listener with
// Peer.Serve. A client dials ws:// or wss:// URLs through Dialer:
//
//	mux.Handle("/tp", websocket.Handler(srv, websocket.Options{}))
//	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: websocket.Dialer(websocket.DialOptions{})})
//	sess, err := cli.Dial(ctx, "ws://127.0.0.1:8080/tp")
//
// On the wire: the subprotocol "tp" is required both ways; every message
// is binary and carries whole tp frames (a peer batches several frames
// into one message; a reader takes the messages as one byte stream, so a
// browser may send one frame per message). A text message, or a message
// past Options.MessageLimit, closes the connection with a WebSocket status
// saying why. Origins are checked as coder/websocket checks them: a
// browser page of another origin is refused unless OriginPatterns names it.
//
// Everything else is tp's: redial (the URL is the address), deadlines,
// plugins, streams. TLS is the URL's: wss:// with the TLS config of
// DialOptions.HTTPClient. The dialer passes each masked message to the
// network in one write (coder/websocket alone writes it 4 KiB at a time).
// A dialed connection has no real addresses (coder/websocket does not
// expose them), so plugin/auth sees it as not loopback and not TLS.
package websocket

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/seed-a9a850dd/tp"
)

// Subprotocol is negotiated on every tp WebSocket connection.
const Subprotocol = "tp"

// DefaultMessageLimit bounds one WebSocket message when Options and
// DialOptions leave MessageLimit 0.
const DefaultMessageLimit = 8 << 20

// Options configures the accepting side.
type Options struct {
	// OriginPatterns are the other origins whose pages may connect (see
	// coder/websocket's AcceptOptions); the request's own host always may,
	// and clients that send no Origin (not browsers) too.
	OriginPatterns []string
	// MessageLimit bounds one WebSocket message; 0 means
	// DefaultMessageLimit. tp's own read limit bounds each frame in it.
	MessageLimit int64
}

// DialOptions configures the dialing side.
type DialOptions struct {
	// HTTPClient makes the handshake request; nil means
	// http.DefaultClient. Set its Transport's TLSClientConfig for wss://.
	HTTPClient *http.Client
	// Header is sent with the handshake request (a credential, say).
	Header http.Header
	// MessageLimit is as Options'.
	MessageLimit int64
}

func limit(n int64) int64 {
	if n <= 0 {
		return DefaultMessageLimit
	}
	return n
}

// accept upgrades r, or answers it with an error.
func accept(w http.ResponseWriter, r *http.Request, opts Options) (*websocket.Conn, bool) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}, OriginPatterns: opts.OriginPatterns})
	if err != nil {
		return nil, false // Accept answered the request
	}
	if c.Subprotocol() != Subprotocol {
		c.Close(websocket.StatusPolicyViolation, `tp over WebSocket needs the subprotocol "tp"`)
		return nil, false
	}
	c.SetReadLimit(limit(opts.MessageLimit))
	return c, true
}

// Handler returns an http.Handler that upgrades each request and serves
// the connection as a session of peer. Each request's handler returns
// when its session ends.
func Handler(peer *tp.Peer, opts Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := accept(w, r, opts)
		if !ok {
			return
		}
		conn := websocket.NetConn(r.Context(), c, websocket.MessageBinary)
		sess, err := peer.ServeConn(conn)
		if err != nil {
			conn.Close()
			return
		}
		<-sess.Done()
	})
}

// Dialer returns a PeerConfig.Dialer for ws:// and wss:// URLs (the
// address given to Dial); network is ignored.
func Dialer(opts DialOptions) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		c, resp, err := websocket.Dial(ctx, addr, &websocket.DialOptions{
			HTTPClient: coalescingClient(opts.HTTPClient), HTTPHeader: opts.Header, Subprotocols: []string{Subprotocol}})
		if err != nil {
			if resp != nil {
				return nil, fmt.Errorf("websocket: %s answered %s: %w", addr, resp.Status, err)
			}
			return nil, fmt.Errorf("websocket: %w", err)
		}
		if c.Subprotocol() != Subprotocol {
			c.Close(websocket.StatusPolicyViolation, `tp over WebSocket needs the subprotocol "tp"`)
			return nil, fmt.Errorf("websocket: %s does not speak tp (no subprotocol %q)", addr, Subprotocol)
		}
		c.SetReadLimit(limit(opts.MessageLimit))
		// The conn outlives the dial's context: it ends with Close.
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}
}

// Listener serves tp over WebSocket on its own HTTP server: what Accept
// returns are upgraded requests to any path, for Peer.Serve.
type Listener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{} // closed by Close
	ended chan struct{} // closed when the HTTP server stops serving ln
	err   error         // why it stopped; set before ended is closed
	once  sync.Once
	wg    sync.WaitGroup
}

// Listen serves on ln (a TCP listener, or a TLS one for wss://).
func Listen(ln net.Listener, opts Options) *Listener {
	l := &Listener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{}), ended: make(chan struct{})}
	l.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := accept(w, r, opts)
		if !ok {
			return
		}
		conn := &closeNotify{Conn: websocket.NetConn(r.Context(), c, websocket.MessageBinary), closed: make(chan struct{})}
		select {
		case l.conns <- conn:
			<-conn.closed // the request lives as long as the connection
		case <-l.done:
			conn.Close()
		case <-l.ended:
			conn.Close()
		}
	})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		err := l.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = net.ErrClosed
		}
		l.err = fmt.Errorf("websocket: %w", err)
		close(l.ended)
	}()
	return l
}

// closeNotify is a conn that says when it is closed.
type closeNotify struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotify) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// Accept returns the next upgraded connection. It fails once the Listener
// is closed, or once the listener under it is closed or fails.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.ended:
		return nil, l.err
	}
}

// Close stops accepting; connections accepted stay until closed.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.srv.Close()
		l.wg.Wait()
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	})
	return err
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }
