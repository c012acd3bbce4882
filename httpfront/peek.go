package httpfront

import (
	"io"
	"net"
)

// readByte reads c's first byte and returns c wrapped to give it back.
func readByte(c net.Conn) (byte, net.Conn, error) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, c, err
	}
	return b[0], &prefixConn{Conn: c, head: b[:]}, nil
}
