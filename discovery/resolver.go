package discovery

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// Endpoint is one server of a service, as a registry lists it.
type Endpoint struct {
	// Addr is what Peer.Dial takes: host:port, or a URL for a transport
	// whose dialer wants one.
	Addr string `json:"addr"`
	// Weight is the endpoint's share for WeightedRandom and ConsistentHash,
	// relative to the others; 0 counts as 1.
	Weight int `json:"weight,omitempty"`
	// Zone and Version are for selectors and people; the client does not
	// read them.
	Zone    string            `json:"zone,omitempty"`
	Version string            `json:"version,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
}

func (e Endpoint) weight() int { return max(e.Weight, 1) }

// equal reports whether e and o describe the same endpoint the same way.
func (e Endpoint) equal(o Endpoint) bool {
	return e.Addr == o.Addr && e.weight() == o.weight() && e.Zone == o.Zone && e.Version == o.Version && maps.Equal(e.Meta, o.Meta)
}

// A Resolver turns a service name into its endpoints as they change.
type Resolver interface {
	// Watch returns a channel that carries service's whole set of
	// endpoints: the current set first, then each new set as it changes.
	// A reader that falls behind gets the newest set, not every one in
	// between. The channel is closed once ctx ends. An error means the
	// watch could not start.
	Watch(ctx context.Context, service string) (<-chan []Endpoint, error)
}

// Static is a Resolver whose sets are given by the program: fixed
// addresses, or a registry of its own that calls Set. Its zero value is
// ready, with no services. It is safe for concurrent use.
type Static struct {
	mu       sync.Mutex
	sets     map[string][]Endpoint
	watchers map[string]map[chan []Endpoint]struct{}
}

// Addrs returns endpoints of weight 1 at addrs.
func Addrs(addrs ...string) []Endpoint {
	eps := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = Endpoint{Addr: a}
	}
	return eps
}

// Set makes eps the endpoints of service, and tells its watchers.
func (s *Static) Set(service string, eps ...Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sets == nil {
		s.sets = map[string][]Endpoint{}
	}
	s.sets[service] = slices.Clone(eps)
	for ch := range s.watchers[service] {
		offer(ch, slices.Clone(eps))
	}
}

// Watch implements Resolver.
func (s *Static) Watch(ctx context.Context, service string) (<-chan []Endpoint, error) {
	ch := make(chan []Endpoint, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watchers == nil {
		s.watchers = map[string]map[chan []Endpoint]struct{}{}
	}
	if s.watchers[service] == nil {
		s.watchers[service] = map[chan []Endpoint]struct{}{}
	}
	s.watchers[service][ch] = struct{}{}
	offer(ch, slices.Clone(s.sets[service]))
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers[service], ch)
		close(ch)
	})
	return ch, nil
}

// offer puts eps in ch (of capacity 1) in place of a set not yet taken.
// The caller is ch's only sender.
func offer(ch chan []Endpoint, eps []Endpoint) {
	select {
	case <-ch:
	default:
	}
	ch <- eps
}
