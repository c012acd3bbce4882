//go:build !unix

package httpfront

import "net"

func peekByte(c net.Conn) (byte, net.Conn, error) { return readByte(c) }
