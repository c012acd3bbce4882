// Package gzip provides an xfer filter that gzip-compresses packed messages.
//
// Importing the package registers the filter with id 'g' at the default
// compression level:
//
//	import _ "github.com/seed-a9a850dd/tp/xfer/gzip"
//
// It is built on the standard library's compress/gzip, so the core module
// needs no compression dependency. (github.com/klauspost/compress/gzip,
// which writes the same format, measured about twice as fast on larger
// bodies: a filter built on it belongs in a module of its own.)
package gzip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"compress/gzip"
	"github.com/seed-a9a850dd/tp/xfer"
)

// ID is the wire id of the filter registered by this package.
const ID = 'g'

// Filter compresses with gzip at one level. Make others with New.
type Filter struct {
	id      byte
	name    string
	level   int
	writers sync.Pool // *writer
	readers sync.Pool // *gzip.Reader
}

// New returns a gzip filter with the given id, name and compression level
// (gzip.BestSpeed to gzip.BestCompression, or gzip.DefaultCompression).
// Register it with xfer.Register to use a level other than the default.
func New(id byte, name string, level int) (*Filter, error) {
	if _, err := gzip.NewWriterLevel(io.Discard, level); err != nil {
		return nil, fmt.Errorf("xfer gzip: %w", err)
	}
	return &Filter{id: id, name: name, level: level}, nil
}

func init() {
	f, _ := New(ID, "gzip", gzip.DefaultCompression)
	xfer.Register(f)
}

// ID returns the filter's wire id.
func (f *Filter) ID() byte { return f.id }

// Name returns the filter's name.
func (f *Filter) Name() string { return f.name }

// appender is an io.Writer that appends to a slice, so the compressor writes
// straight into the caller's buffer.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

type writer struct {
	out appender
	zw  *gzip.Writer
}

// OnPack appends the gzip compression of src to dst.
func (f *Filter) OnPack(dst, src []byte) ([]byte, error) {
	w, _ := f.writers.Get().(*writer)
	if w == nil {
		w = new(writer)
		w.zw, _ = gzip.NewWriterLevel(&w.out, f.level) // level checked by New
	}
	w.out.b = dst
	w.zw.Reset(&w.out)
	_, err := w.zw.Write(src)
	if err == nil {
		err = w.zw.Close()
	}
	dst, w.out.b = w.out.b, nil
	f.writers.Put(w)
	if err != nil {
		return dst, fmt.Errorf("xfer gzip: %w", err)
	}
	return dst, nil
}

// errTooLarge keeps a decompression bomb from allocating past the limit.
var errTooLarge = errors.New("xfer gzip: decompressed frame exceeds the read limit")

// OnUnpack appends the decompression of src to dst, failing once the output
// passes limit bytes.
func (f *Filter) OnUnpack(dst, src []byte, limit int) ([]byte, error) {
	br := bytes.NewReader(src)
	zr, _ := f.readers.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(br)
	} else {
		err = zr.Reset(br)
	}
	if err != nil {
		return dst, fmt.Errorf("xfer gzip: bad header: %w", err)
	}
	defer f.readers.Put(zr)
	zr.Multistream(false)
	start := len(dst)
	for {
		produced := len(dst) - start
		if produced == limit {
			// At the limit: any further byte makes the frame too large.
			var one [1]byte
			if n, _ := zr.Read(one[:]); n > 0 {
				return dst[:start], errTooLarge
			}
			break
		}
		if len(dst) == cap(dst) {
			// Double the output so far, never past the limit.
			dst = slices.Grow(dst, min(max(512, produced), limit-produced))
		}
		n, rerr := zr.Read(dst[len(dst):min(cap(dst), start+limit)])
		dst = dst[:len(dst)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return dst[:start], fmt.Errorf("xfer gzip: corrupt data: %w", rerr)
		}
	}
	return dst, nil
}
