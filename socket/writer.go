package socket

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp/internal/bufpool"
	"github.com/seed-a9a850dd/tp/status"
)

// writer puts frames on a connection from many goroutines, sharing
// syscalls between them.
//
// Concurrency rules: at most one goroutine writes to the conn at a time, the
// owner. Every frame is appended to pending, and a writer returns once its
// frame is there: it is on its way, and its buffer is free again.
//
// Who makes the syscall depends on what bounds the writer. A writer whose
// context never ends, finding no owner, becomes the owner and writes
// inline: the cheapest way, and a write blocked by a dead network then
// waits for the write timeout or the connection's close, which nothing it
// answers to precedes.
// A writer whose context can end never makes the syscall itself: it leaves
// it to a flusher goroutine, so it can return when its context ends
// whatever the network does. An inline owner that finds writers queued
// behind one of the last few owners yields once, so that other goroutines
// ready to write can append theirs (on few cores this yield is what turns
// one syscall per message into one per batch), then writes all that is
// pending in one syscall. If more arrived during that write, ownership
// passes to the flusher, which writes batch after batch until pending is
// empty.
//
// Pending is bounded: past maxPending bytes, writers wait for room until
// their context ends. Writers that must never wait (a read goroutine
// answering what it read) append past the bound, up to hardLimit bytes;
// past that the peer has stopped reading, and the write fails.
//
// Every syscall runs under a write deadline between timeout and 1.5
// timeout away (Config.WriteTimeout), re-armed only when less than timeout
// is left. A write error, that deadline's included, is sticky: every later
// write fails with it, what was pending is dropped, and the connection is
// closed, so its read loop ends too.
type writer struct {
	w          io.Writer
	maxPending int
	conn       net.Conn      // for write deadlines, and closed when a write fails; nil in tests
	timeout    time.Duration // see Config.WriteTimeout
	armed      time.Time     // the write deadline set last; guarded by mu

	full atomic.Bool // owned with pending at maxPending or past it: writers will wait

	mu     sync.Mutex
	room   chan struct{} // closed when pending shrinks, the owner leaves or the writer ends; nil until someone waits
	owned  bool          // a goroutine is writing to w
	queued bool          // a writer queued behind the current owner
	// contended counts down the owners that still yield since a writer last
	// queued: hysteresis, so batching does not stop after one quiet write.
	contended int
	closed    bool
	err       error
	// pending and spare are pooled buffers, swapped for each write; both go
	// back to the pool whenever nothing is pending, so an idle connection
	// holds none.
	pending *[]byte
	spare   *[]byte
	hint    int  // the size of the last batch: what a new buffer starts with
	used    bool // written since the last trim
	flusher sync.WaitGroup
}

// yieldStreak is how many owners keep yielding after the last contention.
const yieldStreak = 16

func (w *writer) init(dst io.Writer, maxPending int) {
	w.w = dst
	w.maxPending = maxPending
}

// npending is how many bytes wait to be written. Called with mu held.
func (w *writer) npending() int {
	if w.pending == nil {
		return 0
	}
	return len(*w.pending)
}

// minBatch is the smallest buffer a batch starts in.
const minBatch = 512

// hardLimit is how many bytes may wait for the connection when writers
// that must not wait have appended past maxPending.
func (w *writer) hardLimit() int { return 4 * w.maxPending }

// How a frame waits for room in pending.
type waitMode int

const (
	waitForRoom waitMode = iota // until ctx ends
	neverWait                   // append past maxPending, up to hardLimit
)

// awaitRoom waits, when the writer is full, until it is not or ctx ends:
// a writer calls it before packing its frame, so a stalled connection
// costs its writers no encoding they would throw away. Not full, it costs
// an atomic load.
func (w *writer) awaitRoom(ctx context.Context) error {
	if !w.full.Load() {
		return nil
	}
	w.mu.Lock()
	for w.owned && w.npending() >= w.maxPending && w.err == nil && !w.closed {
		if err := w.waitRoom(ctx); err != nil {
			return err
		}
	}
	w.mu.Unlock()
	return nil
}

// waitRoom waits, with mu held, until room may have been made (pending
// shrank, the owner left, the writer ended) and returns with mu held; or
// until ctx ends, and returns its status with mu released.
func (w *writer) waitRoom(ctx context.Context) error {
	if w.room == nil {
		w.room = make(chan struct{})
	}
	room := w.room
	w.mu.Unlock()
	select {
	case <-room:
		w.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// setFull records whether writers must wait. Called with mu held. It
// writes only a change: the flag is read by every writer, and a store of
// the same value would still take its cache line from the other cores.
func (w *writer) setFull() {
	if full := w.owned && w.npending() >= w.maxPending; full != w.full.Load() {
		w.full.Store(full)
	}
}

// write puts frame on the wire or in line for it. It returns ErrClosed after
// close, the sticky error after a failed write, and ctx's status if ctx
// ended before the frame found room (then nothing of it was written). A
// nil error means the frame is queued; an inline owner's write error is
// reported to the owner.
func (w *writer) write(ctx context.Context, frame []byte, mode waitMode) error {
	w.mu.Lock()
	for {
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if !w.owned || w.npending() < w.maxPending {
			break
		}
		if mode == neverWait {
			if w.npending()+len(frame) > w.hardLimit() {
				n := w.npending()
				w.mu.Unlock()
				return status.New(status.WriteFailed, fmt.Sprintf("%d bytes wait for a peer that reads nothing", n), nil)
			}
			break
		}
		if err := w.waitRoom(ctx); err != nil {
			return err
		}
	}
	if w.pending == nil {
		w.pending = bufpool.Get(max(len(frame), w.hint, minBatch))
	}
	w.used = true
	*w.pending = append(*w.pending, frame...)
	if w.owned {
		w.queued = true
		w.setFull()
		w.mu.Unlock()
		return nil
	}
	w.owned, w.queued = true, false
	w.setFull()
	if mode == neverWait || ctx.Done() != nil {
		w.flusher.Add(1)
		w.mu.Unlock()
		go w.flush()
		return nil
	}
	yield := w.contended > 0
	w.mu.Unlock()

	if yield {
		runtime.Gosched()
	}
	err := w.writeBatch()

	w.mu.Lock()
	if w.npending() > 0 && w.err == nil {
		w.flusher.Add(1)
		go w.flush() // ownership passes to the flusher
	} else {
		w.release()
	}
	w.mu.Unlock()
	return err
}

// ctxError is the status of a write whose context ended first.
func ctxError(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return status.New(status.Timeout, "deadline passed waiting to write", ctx.Err())
	}
	return status.New(status.Canceled, "canceled waiting to write", context.Cause(ctx))
}

// writeBatch writes what is pending in one syscall. The caller owns the
// writer.
func (w *writer) writeBatch() error {
	w.mu.Lock()
	batch := w.pending
	w.pending, w.spare = w.spare, nil
	w.setFull()
	w.wake() // room for writers waiting on maxPending
	w.arm()
	w.mu.Unlock()
	_, err := w.w.Write(*batch)
	w.mu.Lock()
	w.hint = min(len(*batch), w.maxPending)
	*batch = (*batch)[:0]
	if w.spare == nil && cap(*batch) <= w.maxPending { // one huge frame should not pin its memory
		w.spare = batch
	} else {
		bufpool.Put(batch)
	}
	w.fail(err)
	w.mu.Unlock()
	return err
}

// flush writes what is pending until nothing is; it owns the writer while
// it runs.
func (w *writer) flush() {
	defer w.flusher.Done()
	for {
		w.mu.Lock()
		if w.npending() == 0 || w.err != nil {
			w.release()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		runtime.Gosched() // as in write: let ready writers join the batch
		w.writeBatch()
	}
}

// wake tells writers waiting for room to look again. Called with mu held.
func (w *writer) wake() {
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
}

// arm keeps a write deadline between timeout and 1.5 timeout ahead of the
// write about to start, touching the conn's timer only when the one set is
// less than timeout away. Called with mu held, so close's deadline, once
// set, is never replaced.
func (w *writer) arm() {
	if w.conn == nil || w.timeout <= 0 || w.closed {
		return
	}
	now := time.Now()
	if w.armed.Sub(now) >= w.timeout {
		return
	}
	w.armed = now.Add(w.timeout + w.timeout/2)
	_ = w.conn.SetWriteDeadline(w.armed)
}

// fail records the first write error and closes the connection: it is
// broken, and a read loop on it must end too. Called with mu held.
func (w *writer) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.wake()
		if w.conn != nil {
			_ = w.conn.Close()
		}
	}
}

// release gives up ownership. Called with mu held.
func (w *writer) release() {
	if w.err != nil { // nothing will be written: the buffers go back
		if w.pending != nil {
			bufpool.Put(w.pending)
		}
		if w.spare != nil {
			bufpool.Put(w.spare)
		}
		w.pending, w.spare = nil, nil
	}
	if w.queued {
		w.contended = yieldStreak
	} else if w.contended > 0 {
		w.contended--
	}
	w.owned = false
	w.setFull()
	w.wake()
}

// trim gives the buffers back if nothing was written since the last trim
// and nothing is being written: the connection is idle. Giving them back
// after every write would cost a pool round trip per batch.
func (w *writer) trim() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used || w.owned {
		w.used = false
		return
	}
	if w.pending != nil {
		bufpool.Put(w.pending)
	}
	if w.spare != nil {
		bufpool.Put(w.spare)
	}
	w.pending, w.spare = nil, nil
}

// close refuses new frames and waits until what is pending has been
// written, until deadline, or has failed.
func (w *writer) close(deadline time.Time) {
	w.mu.Lock()
	w.closed = true
	if w.conn != nil {
		_ = w.conn.SetWriteDeadline(deadline)
	}
	w.wake() // writers waiting for room fail with ErrClosed
	for w.owned {
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		<-room
		w.mu.Lock()
	}
	w.owned = true // nobody writes again
	w.mu.Unlock()
	w.flusher.Wait()
}
