package tp

import (
	"sync"

	"github.com/panjf2000/ants/v2"
)

// runQueue holds the CALLs and PUSHes the read goroutines have taken off
// the wire and that wait for a handler goroutine. Its drainers, tasks on
// the peer's pool, run messages one after another until the queue is
// empty.
//
// Binding a message to a goroutine only when one is free to run it, rather
// than waking a pool worker per message, is what makes a burst of frames
// cheap: a drainer that just finished a handler takes the next message on
// the same stack, still in cache, with no handoff.
//
// No message waits behind a handler that blocks. Whenever a drainer runs
// a handler while messages are queued, the queue keeps a spare: a drainer
// started but not yet in a handler. If the handler parks (on I/O, a lock,
// a callback to the peer), the scheduler runs the spare, which takes the
// next message and, if more are queued, makes sure of a spare of its own.
// So every queued message is as close to running as with a goroutine of
// its own, at the cost of a pool task per handler that blocks rather than
// per message.
type runQueue struct {
	pool *ants.PoolWithFuncGeneric[*runQueue] // the peer's handler pool

	mu       sync.Mutex
	ring     []*handlerCtx // len is a power of two
	head     int
	n        int
	spare    int // drainers started and not in a handler
	drainers int // drainers started and not yet done
	inline   int // handlers read goroutines run themselves (see Session.runInline)
}

// start starts a drainer on the pool, counting it against the pool's
// capacity with the handlers read goroutines run themselves; false when
// there is no room.
func (q *runQueue) start() bool {
	q.mu.Lock()
	if q.drainers+q.inline >= q.pool.Cap() {
		q.mu.Unlock()
		return false
	}
	q.drainers++
	q.mu.Unlock()
	if q.pool.Invoke(q) == nil {
		return true
	}
	q.mu.Lock()
	q.drainers--
	q.mu.Unlock()
	return false
}

// tryInline reserves room in the pool's capacity for a handler a read
// goroutine runs itself; endInline gives it back.
func (q *runQueue) tryInline() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.drainers+q.inline >= q.pool.Cap() {
		return false
	}
	q.inline++
	return true
}

func (q *runQueue) endInline() {
	q.mu.Lock()
	q.inline--
	q.mu.Unlock()
}

// push queues c and makes sure a drainer will take it. It reports false,
// with c not queued, when no drainer can start: the pool is full. Other
// messages queued then are refused here.
func (q *runQueue) push(c *handlerCtx) bool {
	q.mu.Lock()
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = c
	q.n++
	if q.spare > 0 {
		q.mu.Unlock()
		return true
	}
	q.spare++
	q.mu.Unlock()
	if q.start() {
		return true
	}
	// The pool is full. Unless a drainer has come free since, nothing
	// will take what is queued (other sessions may have queued behind c,
	// counting on the drainer c was to start): refuse all of it now.
	q.mu.Lock()
	q.spare--
	var refused []*handlerCtx
	if q.spare == 0 {
		refused = q.takeAll()
	}
	q.mu.Unlock()
	queued := true
	for _, r := range refused {
		if r == c {
			queued = false // the caller refuses c
			continue
		}
		r.refuseFull()
	}
	return queued
}

// drain runs queued messages until none is left. It is the pool's task.
func (q *runQueue) drain() {
	q.mu.Lock()
	for q.n > 0 {
		c := q.ring[q.head]
		q.ring[q.head] = nil
		q.head = (q.head + 1) & (len(q.ring) - 1)
		q.n--
		q.spare--
		var refused []*handlerCtx
		if q.n > 0 && q.spare == 0 {
			q.spare++
			q.mu.Unlock()
			if !q.start() {
				// The pool is full: unless a drainer has come free since,
				// what waits would wait behind busy handlers, so it is
				// refused now, as push refuses.
				q.mu.Lock()
				q.spare--
				if q.spare == 0 {
					refused = q.takeAll()
				}
				q.mu.Unlock()
			}
		} else {
			q.mu.Unlock()
		}
		for _, r := range refused {
			r.refuseFull()
		}
		c.run()
		q.mu.Lock()
		q.spare++
	}
	q.spare--
	q.drainers--
	if len(q.ring) > maxIdleRing {
		q.ring, q.head = nil, 0 // a burst's ring should not stay forever
	}
	q.mu.Unlock()
}

// maxIdleRing is the largest ring an empty queue keeps.
const maxIdleRing = 4096

// takeAll empties the queue. Called with mu held.
func (q *runQueue) takeAll() []*handlerCtx {
	out := make([]*handlerCtx, 0, q.n)
	for ; q.n > 0; q.n-- {
		out = append(out, q.ring[q.head])
		q.ring[q.head] = nil
		q.head = (q.head + 1) & (len(q.ring) - 1)
	}
	return out
}

// grow doubles the ring, keeping the order. Called with mu held.
func (q *runQueue) grow() {
	ring := make([]*handlerCtx, max(2*len(q.ring), 64))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)&(len(q.ring)-1)]
	}
	q.ring, q.head = ring, 0
}

// refuseFull refuses a queued message for want of a handler goroutine.
func (c *handlerCtx) refuseFull() {
	p := c.sess.peer
	c.conn.serving.Add(-1)
	p.inflight.leave()
	if err := c.refuse(p.poolFull()); err != nil {
		c.conn.sock.Close() // the peer reads nothing: its read loop ends
	}
}
