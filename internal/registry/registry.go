// Package registry holds values by a one-byte wire id and by a name, in the
// manner of database/sql drivers: registering is serialized and panics on
// nil or duplicate entries, lookups are lock-free.
package registry

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Entry is what a registry holds.
type Entry interface {
	ID() byte
	Name() string
}

// Registry maps ids and names to entries. The zero value is empty and ready.
type Registry[T Entry] struct {
	kind  string // "codec", "xfer filter": used in messages
	mu    sync.Mutex
	table atomic.Pointer[table[T]]
}

type table[T Entry] struct {
	byID   [256]T
	set    [256]bool
	byName map[string]T
}

// New returns an empty registry whose messages call its entries kind.
func New[T Entry](kind string) *Registry[T] { return &Registry[T]{kind: kind} }

// Register adds e. It panics if e is nil or its id or name is taken.
func (r *Registry[T]) Register(e T) {
	if any(e) == nil {
		panic(fmt.Sprintf("%s: Register of nil", r.kind))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next := &table[T]{byName: make(map[string]T)}
	if old := r.table.Load(); old != nil {
		next.byID, next.set = old.byID, old.set
		for k, v := range old.byName {
			next.byName[k] = v
		}
	}
	if next.set[e.ID()] {
		panic(fmt.Sprintf("%s: Register called twice for id %q (%s and %s)", r.kind, e.ID(), next.byID[e.ID()].Name(), e.Name()))
	}
	if _, dup := next.byName[e.Name()]; dup {
		panic(fmt.Sprintf("%s: Register called twice for name %q", r.kind, e.Name()))
	}
	next.byID[e.ID()], next.set[e.ID()] = e, true
	next.byName[e.Name()] = e
	r.table.Store(next)
}

// ByID returns the entry registered under id.
func (r *Registry[T]) ByID(id byte) (T, error) {
	if t := r.table.Load(); t != nil && t.set[id] {
		return t.byID[id], nil
	}
	var zero T
	return zero, fmt.Errorf("%s: nothing is registered with id %q; import the package that registers it", r.kind, id)
}

// ByName returns the entry registered under name.
func (r *Registry[T]) ByName(name string) (T, error) {
	if t := r.table.Load(); t != nil {
		if e, ok := t.byName[name]; ok {
			return e, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("%s: nothing is registered with name %q; import the package that registers it", r.kind, name)
}
