package discovery

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync/atomic"
)

// Request is what a Selector knows of a call or push.
type Request struct {
	Ctx           context.Context
	ServiceMethod string
	Arg           any
}

// Candidate is an endpoint that can take the request now: connected, and
// not ejected by its breaker.
type Candidate struct {
	Endpoint
	// Pending counts this client's calls in flight to the endpoint.
	Pending int
}

// A Selector picks the endpoint for each request. Select gets at least
// one candidate and returns the index of its choice; it is called from
// many goroutines at once. The candidates of successive requests may
// differ as endpoints come, go and are ejected.
type Selector interface {
	Select(r *Request, cands []Candidate) int
}

// RoundRobin takes the candidates in turn.
func RoundRobin() Selector { return &roundRobin{} }

type roundRobin struct{ next atomic.Uint64 }

func (s *roundRobin) Select(_ *Request, cands []Candidate) int {
	return int(s.next.Add(1) % uint64(len(cands)))
}

// WeightedRandom picks at random, in proportion to Endpoint.Weight.
func WeightedRandom() Selector { return weightedRandom{} }

type weightedRandom struct{}

func (weightedRandom) Select(_ *Request, cands []Candidate) int {
	total := 0
	for _, c := range cands {
		total += c.weight()
	}
	n := rand.IntN(total)
	for i, c := range cands {
		if n -= c.weight(); n < 0 {
			return i
		}
	}
	return len(cands) - 1
}

// LeastPending picks two candidates at random and takes the one with
// fewer calls in flight ("the power of two choices"): load follows the
// endpoints that answer fastest, without every caller herding onto the
// single least loaded one.
func LeastPending() Selector { return leastPending{} }

type leastPending struct{}

func (leastPending) Select(_ *Request, cands []Candidate) int {
	if len(cands) == 1 {
		return 0
	}
	a := rand.IntN(len(cands))
	b := rand.IntN(len(cands) - 1)
	if b >= a {
		b++
	}
	if cands[b].Pending < cands[a].Pending {
		return b
	}
	return a
}

// ConsistentHash sends every request with the same key to the same
// endpoint while the set of candidates stays the same, by rendezvous
// (highest random weight) hashing over the key and each endpoint's
// address, scaled by Endpoint.Weight. When an endpoint joins, only the
// keys it wins move to it (about 1/n of them); when one leaves or is
// ejected, only its keys move. Any two clients agree on where a key goes.
// A Select costs a hash per candidate. key reads the request's key (a
// user ID from the argument, a value from the context); a request whose
// key is "" goes to any endpoint.
func ConsistentHash(key func(r *Request) string) Selector { return consistentHash{key} }

type consistentHash struct{ key func(*Request) string }

func (s consistentHash) Select(r *Request, cands []Candidate) int {
	k := s.key(r)
	if k == "" {
		return rand.IntN(len(cands))
	}
	h := fnv.New64a()
	h.Write([]byte(k))
	base := h.Sum64()
	best, bestScore := 0, math.Inf(-1)
	for i, c := range cands {
		h := fnv.New64a()
		h.Write([]byte(c.Addr))
		u := mix(base ^ h.Sum64())
		// Weighted rendezvous: -w / ln(u), u uniform in (0, 1).
		f := (float64(u>>11) + 0.5) / (1 << 53)
		score := -float64(c.weight()) / math.Log(f)
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// mix is SplitMix64's finalizer: every bit of x moves every bit of the
// result, which FNV alone does not do for inputs that differ only at the
// end.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
