// Package quic carries tp sessions over QUIC (github.com/quic-go/quic-go):
// for lossy and mobile links, with TLS 1.3 always, no head-of-line
// blocking between connections, and a connection that outlives a change
// of the client's address where the network allows.
//
//	ln, err := quic.Listen("127.0.0.1:4433", serverTLS, nil)
//	go srv.Serve(ln)
//	cli, err := tp.NewPeer(tp.PeerConfig{Dialer: quic.Dialer(clientTLS, nil)})
//	sess, err := cli.Dial(ctx, "127.0.0.1:4433")
//
// A session is one QUIC connection carrying one bidirectional stream,
// which the dialing side opens: tp multiplexes calls and streams itself,
// and its flow control and ordering work on one byte stream as on TCP. A
// QUIC stream per call would remove head-of-line blocking between calls
// on a lossy link, at the price of a stream's setup and state per call
// and of tp's own ordering guarantees (a reply after its call's cancel,
// frames of one stream in order); the simple mapping comes first. The
// ALPN protocol is "tp"; a peer offering another fails the handshake. A
// peer may open one stream only (Config.MaxIncomingStreams is 1), and
// must write on it within StreamTimeout (or the Config's
// HandshakeIdleTimeout).
package quic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the application protocol negotiated on every tp QUIC connection.
const ALPN = "tp"

// StreamTimeout bounds how long an accepted connection may take to open
// and write on its stream, unless the quic.Config given to Listen sets
// HandshakeIdleTimeout, which then bounds it.
const StreamTimeout = 10 * time.Second

// tlsFor returns a copy of conf speaking ALPN and TLS 1.3.
func tlsFor(conf *tls.Config) *tls.Config {
	c := conf.Clone()
	c.NextProtos = []string{ALPN}
	c.MinVersion = tls.VersionTLS13
	return c
}

func configFor(conf *quic.Config) *quic.Config {
	var c quic.Config
	if conf != nil {
		c = *conf
	}
	c.MaxIncomingStreams = 1
	c.MaxIncomingUniStreams = -1
	return &c
}

// Listener accepts tp sessions over QUIC, for Peer.Serve. It owns its UDP
// socket: Close stops accepting, and the socket closes once the sessions
// accepted have closed too (a graceful close finishes them first), so the
// address is free again at once.
type Listener struct {
	ln    *quic.Listener
	tr    *quic.Transport
	udp   net.PacketConn
	conns chan net.Conn
	// streamTimeout bounds the wait for an accepted connection's stream.
	streamTimeout time.Duration
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	once          sync.Once

	mu     sync.Mutex
	open   int  // accepted conns not yet closed
	closed bool // Close was called
}

// Listen listens on the UDP address addr. tlsConf needs a certificate;
// quicConf may be nil.
func Listen(addr string, tlsConf *tls.Config, quicConf *quic.Config) (*Listener, error) {
	if tlsConf == nil || len(tlsConf.Certificates) == 0 && tlsConf.GetCertificate == nil && tlsConf.GetConfigForClient == nil {
		return nil, errors.New("quic: Listen needs a TLS config with a certificate")
	}
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tlsFor(tlsConf), configFor(quicConf))
	if err != nil {
		udp.Close()
		return nil, err
	}
	l := &Listener{ln: ln, tr: tr, udp: udp, conns: make(chan net.Conn), streamTimeout: StreamTimeout}
	if quicConf != nil && quicConf.HandshakeIdleTimeout > 0 {
		l.streamTimeout = quicConf.HandshakeIdleTimeout
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept(l.ctx)
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			ctx, cancel := context.WithTimeout(l.ctx, l.streamTimeout)
			s, err := c.AcceptStream(ctx)
			cancel()
			if err != nil {
				c.CloseWithError(1, "tp: no stream opened and written in time")
				return
			}
			conn := newConn(s, c)
			l.mu.Lock()
			l.open++
			l.mu.Unlock()
			conn.onClose = l.closedOne
			select {
			case l.conns <- conn:
			case <-l.ctx.Done():
				conn.Close()
			}
		}()
	}
}

// Accept returns the next session's connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting. Sessions accepted stay until closed.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel() // stops the accept loop; the quic listener closes with the socket
		l.wg.Wait()
		l.mu.Lock()
		l.closed = true
		last := l.open == 0
		l.mu.Unlock()
		if last {
			l.release()
		}
	})
	return err
}

// closedOne counts an accepted conn closed; the last one after Close
// releases the socket.
func (l *Listener) closedOne() {
	l.mu.Lock()
	l.open--
	last := l.closed && l.open == 0
	l.mu.Unlock()
	if last {
		l.release()
	}
}

func (l *Listener) release() {
	l.ln.Close()
	l.tr.Close()
	l.udp.Close()
}

// Addr is the UDP address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Dialer returns a PeerConfig.Dialer that dials UDP addresses over QUIC;
// tlsConf says which servers to trust (its RootCAs, ServerName), quicConf
// may be nil. network is ignored.
func Dialer(tlsConf *tls.Config, quicConf *quic.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	tc, qc := tlsFor(tlsConf), configFor(quicConf)
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		raddr, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("quic: %w", err)
		}
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			return nil, fmt.Errorf("quic: %w", err)
		}
		// Connection IDs of its own let the connection move to another
		// path (Conn.QUIC().AddPath): a client with none cannot migrate.
		tr := &quic.Transport{Conn: udp, ConnectionIDLength: 4}
		c, err := tr.Dial(ctx, raddr, tc, qc)
		if err != nil {
			tr.Close()
			udp.Close()
			return nil, fmt.Errorf("quic: %w", err)
		}
		s, err := c.OpenStreamSync(ctx)
		if err != nil {
			c.CloseWithError(1, "tp: cannot open the stream")
			tr.Close()
			udp.Close()
			return nil, fmt.Errorf("quic: %w", err)
		}
		conn := newConn(s, c)
		conn.onClose = func() {
			tr.Close()
			udp.Close()
		}
		return conn, nil
	}
}

// Conn is a session's QUIC connection as a net.Conn: its one stream.
type Conn struct {
	*quic.Stream
	c        *quic.Conn
	readDone chan struct{} // closed when a Read has returned an error (EOF: the peer's close)
	readOnce sync.Once
	once     sync.Once
	onClose  func() // the listener's count for accepted conns; the socket's close for dialed ones
}

func newConn(s *quic.Stream, c *quic.Conn) *Conn {
	return &Conn{Stream: s, c: c, readDone: make(chan struct{})}
}

// Read reads the stream.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	if err == io.EOF {
		c.readOnce.Do(func() { close(c.readDone) })
	}
	return n, err
}

// closeWait bounds how long Close waits for the peer's side of the stream
// to end before it closes the connection, which drops what is unsent.
const closeWait = time.Second

// Close ends the stream, so what was written reaches the peer, waits
// (at most closeWait) for the peer to end its side too, and closes the
// connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.Stream.Close() // FIN after what is written
		t := time.NewTimer(closeWait)
		select {
		case <-c.readDone:
		case <-c.c.Context().Done():
		case <-t.C:
		}
		t.Stop()
		c.Stream.CancelRead(0)
		err = c.c.CloseWithError(0, "")
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// QUIC is the QUIC connection: a client may move it to another network
// path (AddPath with a Transport on the new socket, then the path's Probe
// and Switch), and the session goes on.
func (c *Conn) QUIC() *quic.Conn { return c.c }

// LocalAddr is the connection's local UDP address.
func (c *Conn) LocalAddr() net.Addr { return c.c.LocalAddr() }

// RemoteAddr is the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.c.RemoteAddr() }

// ConnectionState is the connection's TLS state.
func (c *Conn) ConnectionState() tls.ConnectionState { return c.c.ConnectionState().TLS }
