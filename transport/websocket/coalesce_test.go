package websocket

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"testing"
)

// recorder is the connection under a frameWriter: it keeps every write.
type recorder struct {
	io.Reader
	io.Closer
	writes [][]byte
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

// frame returns one WebSocket frame of n payload bytes, in the shortest
// length form, masked or not.
func frame(n int, masked bool) []byte {
	b := []byte{0x82, 0}
	switch {
	case n < 126:
		b[1] = byte(n)
	case n < 1<<16:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b[1] |= 0x80
		b = append(b, 1, 2, 3, 4)
	}
	for i := range n {
		b = append(b, byte(i))
	}
	return b
}

// FuzzFrameWriter: whatever the frames and however the writes cut them,
// the bytes pass on unchanged and in order, and each write passed on ends
// where a frame ends.
func FuzzFrameWriter(f *testing.F) {
	f.Add([]byte{10, 200, 70, 3}, []byte{1, 5, 255, 4096 >> 8})
	f.Add([]byte{0, 125, 126, 127}, []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, sizes, cuts []byte) {
		var stream []byte
		var ends []int // where frames end in stream
		for i, s := range sizes {
			n := int(s) * int(s) // up to 65025: all three length forms
			if i%5 == 4 {
				n = 70000 + int(s)
			}
			stream = append(stream, frame(n, i%2 == 0)...)
			ends = append(ends, len(stream))
		}
		rec := &recorder{}
		fw := &frameWriter{ReadWriteCloser: struct {
			io.Reader
			io.Writer
			io.Closer
		}{nil, rec, nil}}
		rest := stream
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				n = min(n, 1+int(cuts[i%len(cuts)])*int(cuts[i%len(cuts)]))
			}
			if w, err := fw.Write(rest[:n]); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			rest = rest[n:]
		}
		if got := bytes.Join(rec.writes, nil); !bytes.Equal(got, stream) {
			t.Fatalf("passed on %d bytes, want the %d written", len(got), len(stream))
		}
		at := 0
		for _, w := range rec.writes {
			at += len(w)
			if len(w) < coalesceMax && !slices.Contains(ends, at) {
				t.Fatalf("a write ends at %d, inside a frame (frames end at %v)", at, ends)
			}
		}
		if fw.buf != nil {
			t.Fatal("the frameWriter holds a buffer after whole frames")
		}
	})
}
