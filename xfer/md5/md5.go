// Package md5 provides an xfer filter that appends an MD5 digest to each
// packed message and rejects any frame whose digest does not match, which
// catches corruption in transit. It detects accidents, not attackers: anyone
// who can alter a frame can recompute the digest. Use TLS or plugin/secure
// against tampering.
//
// Importing the package registers the filter with id 'm':
//
//	import _ "github.com/seed-a9a850dd/tp/xfer/md5"
package md5

import (
	"bytes"
	"crypto/md5"
	"errors"

	"github.com/seed-a9a850dd/tp/xfer"
)

// ID is the filter's wire id.
const ID = 'm'

// ErrMismatch is returned when a frame's digest does not match its bytes.
var ErrMismatch = errors.New("xfer md5: checksum mismatch: the frame was corrupted in transit")

// Filter is the md5 integrity filter.
type Filter struct{}

func init() { xfer.Register(Filter{}) }

// ID returns 'm'.
func (Filter) ID() byte { return ID }

// Name returns "md5".
func (Filter) Name() string { return "md5" }

// OnPack appends src followed by its 16-byte MD5 digest.
func (Filter) OnPack(dst, src []byte) ([]byte, error) {
	sum := md5.Sum(src)
	dst = append(dst, src...)
	return append(dst, sum[:]...), nil
}

// OnUnpack checks and strips the digest.
func (Filter) OnUnpack(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < md5.Size {
		return dst, errors.New("xfer md5: frame is shorter than its digest")
	}
	body := src[:len(src)-md5.Size]
	if len(body) > limit {
		return dst, errors.New("xfer md5: frame exceeds the read limit")
	}
	sum := md5.Sum(body)
	if !bytes.Equal(sum[:], src[len(body):]) {
		return dst, ErrMismatch
	}
	return append(dst, body...), nil
}
