package websocket

import (
	"encoding/binary"
	"io"
	"net/http"
	"sync"
)

// A client masks what it sends (RFC 6455 §5.3), and coder/websocket does it
// through a 4 KiB buffer that it writes out each time it fills: a batch of
// tp frames in one 64 KiB message cost sixteen write syscalls. The dialer
// therefore puts frameWriter under the upgraded connection: it follows the
// WebSocket framing of the bytes written and passes them on once a frame
// is complete, so a message goes out in one write whatever its size. It
// holds no buffer between messages.

// coalesceMax bounds what a frameWriter holds: past it, bytes go out
// before their frame is complete (correct, only more writes).
const coalesceMax = 1 << 20

var coalesceBufs = sync.Pool{New: func() any { return new([]byte) }}

// frameWriter passes writes to w whole frames at a time. Writes are
// serial (coder/websocket writes under its frame lock); Close and Read may
// come from other goroutines and do not touch the buffer.
type frameWriter struct {
	io.ReadWriteCloser
	buf  *[]byte // bytes written and not yet passed on; nil when empty
	head [14]byte
	hn   int   // bytes of the current frame's header seen so far
	left int64 // bytes of the current frame's payload still to come
}

// Write takes p in, and passes on everything held once p ends on a frame's
// boundary.
func (f *frameWriter) Write(p []byte) (int, error) {
	whole := f.boundaryAfter(p)
	if f.buf == nil && whole {
		return f.ReadWriteCloser.Write(p) // whole frames: nothing to hold
	}
	if f.buf == nil {
		f.buf = coalesceBufs.Get().(*[]byte)
	}
	*f.buf = append(*f.buf, p...)
	if whole || len(*f.buf) >= coalesceMax {
		return len(p), f.flush()
	}
	return len(p), nil
}

// boundaryAfter follows the framing through p and reports whether p ends
// where a frame ends.
func (f *frameWriter) boundaryAfter(p []byte) bool {
	for len(p) > 0 {
		if f.left > 0 {
			n := int64(len(p))
			if n > f.left {
				n = f.left
			}
			f.left -= n
			p = p[n:]
			continue
		}
		// Reading a header: 2 bytes, then 2 or 8 of length, then 4 of mask.
		f.head[f.hn] = p[0]
		f.hn++
		p = p[1:]
		if f.hn < 2 {
			continue
		}
		need, size := 2, int64(f.head[1]&0x7f)
		switch size {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if f.head[1]&0x80 != 0 {
			need += 4
		}
		if f.hn < need {
			continue
		}
		switch size {
		case 126:
			size = int64(binary.BigEndian.Uint16(f.head[2:]))
		case 127:
			size = int64(binary.BigEndian.Uint64(f.head[2:]) & (1<<63 - 1))
		}
		f.hn, f.left = 0, size
	}
	return f.hn == 0 && f.left == 0
}

// flush passes on what is held and gives the buffer back.
func (f *frameWriter) flush() error {
	b := f.buf
	f.buf = nil
	_, err := f.ReadWriteCloser.Write(*b)
	if cap(*b) <= coalesceMax {
		*b = (*b)[:0]
		coalesceBufs.Put(b)
	}
	return err
}

// coalescing is a RoundTripper that puts a frameWriter under every
// upgraded connection it returns.
type coalescing struct{ next http.RoundTripper }

func (c coalescing) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &frameWriter{ReadWriteCloser: rwc}
	}
	return resp, nil
}

// coalescingClient is hc (or http.DefaultClient) with its transport under
// a coalescing one.
func coalescingClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = coalescing{next}
	return &c
}
