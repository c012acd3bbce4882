// Package bufpool recycles byte slices in power-of-two size classes, so a
// 600-byte frame never pins a megabyte and a large body never trashes the
// small buffers' pool.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 9  // 512 B
	maxShift = 22 // 4 MiB; larger buffers are allocated and dropped
)

var pools [maxShift - minShift + 1]sync.Pool

func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns a buffer of length 0 and capacity at least n.
func Get(n int) *[]byte {
	c := class(n)
	if c >= len(pools) {
		b := make([]byte, 0, n)
		return &b
	}
	if p, _ := pools[c].Get().(*[]byte); p != nil {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, 1<<(c+minShift))
	return &b
}

// Put recycles b. The caller must not touch *b afterwards. Buffers that grew
// by append go to the class their capacity fills.
func Put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minShift || c > 1<<maxShift {
		return
	}
	// The largest class whose size c covers.
	pools[bits.Len(uint(c))-1-minShift].Put(b)
}
