//go:build unix

package socket

import "syscall"

// rawReadable says readFD works here.
const rawReadable = true

// readFD reads the non-blocking descriptor fd once into p.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}
