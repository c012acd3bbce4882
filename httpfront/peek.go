package httpfront

import (
	"crypto/tls"
	"io"
	"net"
)

// readByte reads c's first byte and returns c wrapped to give it back. A
// TLS connection keeps saying so (ConnectionState), for Session.TLS.
func readByte(c net.Conn) (byte, net.Conn, error) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, c, err
	}
	p := &prefixConn{Conn: c, head: b[:]}
	if _, ok := c.(connState); ok {
		return b[0], tlsPrefixConn{p}, nil
	}
	return b[0], p, nil
}

type connState interface{ ConnectionState() tls.ConnectionState }

// tlsPrefixConn is a prefixConn over a TLS connection.
type tlsPrefixConn struct{ *prefixConn }

func (c tlsPrefixConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(connState).ConnectionState()
}
