// Package xfer defines byte filters that run over a packed message, such as
// compression (xfer/gzip) or an integrity check (xfer/md5), and Pipe, the
// chain of them a message travels through.
//
// A filter is registered by a one-byte id, which travels in the frame, and a
// name. Importing a filter's package registers it:
//
//	import _ "github.com/seed-a9a850dd/tp/xfer/gzip"
package xfer

import (
	"fmt"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/internal/registry"
)

// A Filter transforms the bytes of a packed message and undoes it on the
// other side. Implementations must be safe for concurrent use.
type Filter interface {
	// ID is the byte that names the filter on the wire.
	ID() byte
	// Name is the filter's name for people and configuration.
	Name() string
	// OnPack appends the filtered form of src to dst.
	OnPack(dst, src []byte) ([]byte, error)
	// OnUnpack appends the original form of src to dst. It fails, without
	// allocating past it, once the output would exceed limit bytes: that is
	// what keeps a decompression bomb from exhausting memory.
	OnUnpack(dst, src []byte, limit int) ([]byte, error)
}

var filters = registry.New[Filter]("xfer filter")

// Register makes f available by its id and name. It panics if f is nil or
// its id or name is taken.
func Register(f Filter) { filters.Register(f) }

// ByID returns the filter registered under id.
func ByID(id byte) (Filter, error) { return filters.ByID(id) }

// ByName returns the filter registered under name.
func ByName(name string) (Filter, error) { return filters.ByName(name) }

// Pipe is a chain of filter ids. Packing runs the filters in order; unpacking
// undoes them in reverse. The zero Pipe passes bytes through unchanged.
type Pipe []byte

// Append adds the filters named by ids to the end of the chain.
func (p *Pipe) Append(ids ...byte) { *p = append(*p, ids...) }

// Reset empties the chain, keeping its storage.
func (p *Pipe) Reset() { *p = (*p)[:0] }

// Check reports the first id in the pipe that no filter is registered under.
func (p Pipe) Check() error {
	for _, id := range p {
		if _, err := ByID(id); err != nil {
			return err
		}
	}
	return nil
}

// Pack appends src, run through every filter in order, to dst.
func (p Pipe) Pack(dst, src []byte) ([]byte, error) {
	return p.run(dst, src, 0, false)
}

// Unpack appends src, with every filter undone in reverse order, to dst. No
// stage may produce more than limit bytes.
func (p Pipe) Unpack(dst, src []byte, limit int) ([]byte, error) {
	return p.run(dst, src, limit, true)
}

// run chains the filters through two scratch buffers; the last stage writes
// straight into dst.
func (p Pipe) run(dst, src []byte, limit int, undo bool) ([]byte, error) {
	if len(p) == 0 {
		if undo && len(src) > limit {
			return dst, fmt.Errorf("xfer: %d bytes exceed the limit of %d", len(src), limit)
		}
		return append(dst, src...), nil
	}
	var scratch [2]*[]byte
	defer func() {
		bufpool.Put(scratch[0])
		bufpool.Put(scratch[1])
	}()
	cur := src
	for i := range p {
		id := p[i]
		if undo {
			id = p[len(p)-1-i]
		}
		f, err := ByID(id)
		if err != nil {
			return dst, err
		}
		out := dst
		last := i == len(p)-1
		if !last {
			s := i % 2
			if scratch[s] == nil {
				scratch[s] = bufpool.Get(len(cur))
			}
			out = (*scratch[s])[:0]
		}
		if undo {
			out, err = f.OnUnpack(out, cur, limit)
		} else {
			out, err = f.OnPack(out, cur)
		}
		if err != nil {
			return dst, err
		}
		if last {
			return out, nil
		}
		*scratch[i%2] = out
		cur = out
	}
	panic("unreachable")
}
