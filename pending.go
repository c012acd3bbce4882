package tp

import (
	"context"
	"sync"
	"sync/atomic"
)

// pendingCalls holds the calls sent on one connection that wait for their
// reply, by seq. It is sharded so concurrent callers on one session do not
// queue behind one mutex. closeAll closes it: a connection's calls are
// failed once, and a call cannot register after that.
type pendingCalls struct {
	shards [32]pendingShard
	n      atomic.Int64 // calls waiting, for PeerConfig.MaxPendingCalls

	// Someone waits for the table to empty (a graceful Close): the last
	// take closes empty.
	watched atomic.Bool
	mu      sync.Mutex
	empty   chan struct{}
}

type pendingShard struct {
	mu     sync.Mutex
	calls  map[uint32]*CallCmd
	peak   int // the most calls the map has held: Go maps never shrink
	closed bool
	_      [32]byte // keep shards on their own cache lines
}

// maxIdleShard is the most calls an emptied shard's map may have held
// and still be kept; a burst past it should not pin its buckets for the
// connection's life.
const maxIdleShard = 1024

func (p *pendingCalls) shard(seq uint32) *pendingShard { return &p.shards[seq%uint32(len(p.shards))] }

// addResult says what add did.
type addResult int

const (
	added     addResult = iota
	seqInUse            // a call with the seq still waits: take another
	tableShut           // the connection has ended
)

// add registers c under c.seq.
func (p *pendingCalls) add(c *CallCmd) addResult {
	s := p.shard(c.seq)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return tableShut
	}
	if s.calls == nil {
		s.calls = make(map[uint32]*CallCmd)
	}
	if _, taken := s.calls[c.seq]; taken {
		return seqInUse
	}
	s.calls[c.seq] = c
	s.peak = max(s.peak, len(s.calls))
	p.n.Add(1)
	return added
}

// take removes and returns the call with seq, or nil. Whoever takes a call
// owns its completion.
func (p *pendingCalls) take(seq uint32) *CallCmd {
	s := p.shard(seq)
	s.mu.Lock()
	c := s.calls[seq]
	if c != nil {
		delete(s.calls, seq)
		if len(s.calls) == 0 && s.peak > maxIdleShard {
			s.calls, s.peak = nil, 0
		}
		p.left(1)
	}
	s.mu.Unlock()
	return c
}

// left counts n calls out, and wakes a waitEmpty when none is left.
func (p *pendingCalls) left(n int64) {
	if p.n.Add(-n) == 0 && p.watched.Load() {
		p.mu.Lock()
		if p.empty != nil {
			close(p.empty)
			p.empty = nil
		}
		p.mu.Unlock()
	}
}

// closeAll closes the table and returns the calls that were waiting.
func (p *pendingCalls) closeAll() []*CallCmd {
	var out []*CallCmd
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		s.closed = true
		for seq, c := range s.calls {
			out = append(out, c)
			delete(s.calls, seq)
		}
		s.mu.Unlock()
	}
	if len(out) > 0 {
		p.left(int64(len(out)))
	}
	return out
}

// waitEmpty waits until no call waits, or ctx ends; it reports whether
// none does.
func (p *pendingCalls) waitEmpty(ctx context.Context) bool {
	p.watched.Store(true)
	for {
		p.mu.Lock()
		if p.n.Load() == 0 {
			p.mu.Unlock()
			return true
		}
		if p.empty == nil {
			p.empty = make(chan struct{})
		}
		empty := p.empty
		p.mu.Unlock()
		select {
		case <-empty:
		case <-ctx.Done():
			return false
		}
	}
}
