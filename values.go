package tp

// A Key names a value of type T that a session keeps for the application
// or a plugin: a user's identity, a session key, per-session counters.
// Keys are told apart by identity, not by name, so two packages never
// collide: make each once, with NewKey, in a package variable. Values last
// as long as the Session, across redials, and are safe for concurrent use.
type Key[T any] struct{ name string }

// NewKey returns a new key; name is for people (String), not for lookup.
func NewKey[T any](name string) *Key[T] { return &Key[T]{name: name} }

// String returns the key's name.
func (k *Key[T]) String() string { return k.name }

// Get returns the value s keeps under k, and whether it keeps one.
func (k *Key[T]) Get(s *Session) (T, bool) {
	v, ok := s.values.Load(k)
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

// Set makes s keep v under k.
func (k *Key[T]) Set(s *Session, v T) { s.values.Store(k, v) }

// GetOrSet returns the value s keeps under k, first setting it to v if s
// keeps none; loaded reports whether one was there.
func (k *Key[T]) GetOrSet(s *Session, v T) (actual T, loaded bool) {
	a, loaded := s.values.LoadOrStore(k, v)
	return a.(T), loaded
}

// Delete removes the value s keeps under k and returns it, if there was
// one.
func (k *Key[T]) Delete(s *Session) (T, bool) {
	v, ok := s.values.LoadAndDelete(k)
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}
