//go:build unix

package httpfront

import (
	"net"
	"syscall"
)

// peekByte returns c's first byte. A TCP or unix connection is peeked
// (MSG_PEEK), so it goes on as it is, with the runtime's own reads;
// another is read, and returned wrapped to give the byte back.
func peekByte(c net.Conn) (byte, net.Conn, error) {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		ok = false
	}
	if !ok {
		return readByte(c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readByte(c)
	}
	var b [1]byte
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return perr != syscall.EAGAIN
	})
	if err == nil {
		err = perr
	}
	if err == nil && n == 0 {
		err = net.ErrClosed // the peer closed without a byte
	}
	return b[0], c, err
}
