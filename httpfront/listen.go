package httpfront

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen returns a listener for Peer.Serve that also serves HTTP on ln's
// port: a connection whose first byte starts an HTTP method (or the
// HTTP/2 preface) goes to a server of the front's own, which speaks
// HTTP/1.1 and unencrypted HTTP/2 (h2c) and bounds each request's headers
// by Options.ReadHeaderTimeout; every other connection is returned to the
// peer. A connection that sends nothing within that timeout is closed.
// tp peers send their hello at once, so they are told apart on arrival.
// Closing the listener stops both.
//
// For HTTPS and tp over TLS on one port, give Listen a TLS listener
// (tls.NewListener) and leave PeerConfig.TLS unset: the bytes sorted are
// then the decrypted ones, and Session.TLS still reports the connection's
// TLS state. HTTPS is served as HTTP/1.1.
func (f *Front) Listen(ln net.Listener) net.Listener {
	s := &sniffer{
		Listener: ln,
		timeout:  f.opts.ReadHeaderTimeout,
		tp:       make(chan net.Conn),
		http:     &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})},
		done:     make(chan struct{}),
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{Handler: f, ReadHeaderTimeout: f.opts.ReadHeaderTimeout, Protocols: protocols}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.srv.Serve(s.http)
	}()
	go s.accept()
	return s
}

type sniffer struct {
	net.Listener
	timeout time.Duration
	tp      chan net.Conn
	http    *connListener
	srv     *http.Server

	done    chan struct{} // closed when accepting ends
	err     error         // why; set before done is closed
	once    sync.Once
	wg      sync.WaitGroup
	sorting sync.WaitGroup
}

func (s *sniffer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			s.err = err
			close(s.done)
			return
		}
		s.sorting.Add(1)
		go s.sort(c)
	}
}

// sort hands c to HTTP or to tp by its first byte.
func (s *sniffer) sort(c net.Conn) {
	defer s.sorting.Done()
	c.SetReadDeadline(time.Now().Add(s.timeout))
	first, c, err := peekByte(c)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	to := s.tp
	if first >= 'A' && first <= 'Z' { // GET, POST, ..., PRI (the HTTP/2 preface)
		to = s.http.conns
	}
	select {
	case to <- c:
	case <-s.done:
		c.Close()
	case <-s.http.done:
		c.Close()
	}
}

// Accept returns the next tp connection.
func (s *sniffer) Accept() (net.Conn, error) {
	select {
	case c := <-s.tp:
		return c, nil
	case <-s.done:
		return nil, s.err
	}
}

// Close stops accepting both kinds, and closes the HTTP connections.
func (s *sniffer) Close() error {
	var err error
	s.once.Do(func() {
		err = s.Listener.Close()
		<-s.done
		s.http.Close()
		s.srv.Close()
		s.sorting.Wait()
		s.wg.Wait()
	})
	return err
}

// prefixConn gives back the bytes read to tell a connection's kind.
type prefixConn struct {
	net.Conn
	head []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connListener hands the HTTP server the connections sorted to it.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
