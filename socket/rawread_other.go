//go:build !unix

package socket

import "syscall"

// rawReadable says readFD does not work here: connections are read
// through their Read method.
const rawReadable = false

func readFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
