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
	var rc syscall.RawConn
	var err error
	switch cc := c.(type) {
	case *net.TCPConn:
		rc, err = cc.SyscallConn()
	case *net.UnixConn:
		rc, err = cc.SyscallConn()
	default:
		return readByte(c)
	}
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
