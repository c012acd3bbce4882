package socket

import (
	"io"
	"runtime"
	"sync"
)

// writer puts frames on a connection from many goroutines, sharing
// syscalls between them.
//
// Concurrency rules: at most one goroutine writes to the conn at a time, the
// owner. Every frame is appended to pending. A writer that finds no owner
// becomes it and, if writers queued behind one of the last few owners,
// yields once
// so that other goroutines ready to write can append theirs (on few cores
// this yield is what turns one syscall per message into one per batch; a
// socket with a single writer never yields, so it does not hand the CPU
// to goroutines writing elsewhere), then writes all that is pending in one
// syscall. If more arrived during
// that write, ownership passes to a flusher goroutine, which writes batch
// after batch until pending is empty; the caller returns. Frames are
// copied into pending, so a caller's buffer is free again as soon as write
// returns.
//
// Pending is bounded: past maxPending bytes, writers wait for the owner.
// A write error is sticky: every later write fails with it and what was
// pending is dropped, as the connection is broken anyway.
type writer struct {
	w          io.Writer
	maxPending int

	mu     sync.Mutex
	cond   sync.Cond // broadcast when pending shrinks or ownership is released
	owned  bool      // a goroutine is writing to w
	queued bool      // a writer queued behind the current owner
	// contended counts down the owners that still yield since a writer last
	// queued: hysteresis, so batching does not stop after one quiet write.
	contended int
	closed    bool
	err       error
	pending   []byte
	spare     []byte // the other buffer, swapped with pending for each write
	flusher   sync.WaitGroup
}

// yieldStreak is how many owners keep yielding after the last contention.
const yieldStreak = 16

func (w *writer) init(dst io.Writer, maxPending int) {
	w.w = dst
	w.maxPending = maxPending
	w.cond.L = &w.mu
}

// write puts frame on the wire or in line for it. It returns ErrClosed after
// close and the sticky error after a failed write. A nil error means the
// frame is queued; the owner's write error is reported to the owner.
func (w *writer) write(frame []byte) error {
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
		if !w.owned || len(w.pending) < w.maxPending {
			break
		}
		w.cond.Wait()
	}
	w.pending = append(w.pending, frame...)
	if w.owned {
		w.queued = true
		w.mu.Unlock()
		return nil
	}
	w.owned, w.queued = true, false
	yield := w.contended > 0
	w.mu.Unlock()

	if yield {
		runtime.Gosched()
	}
	err := w.writeBatch()

	w.mu.Lock()
	if len(w.pending) > 0 && w.err == nil {
		w.flusher.Add(1)
		go w.flush() // ownership passes to the flusher
	} else {
		w.release()
	}
	w.mu.Unlock()
	return err
}

// writeBatch writes what is pending in one syscall. The caller owns the
// writer.
func (w *writer) writeBatch() error {
	w.mu.Lock()
	batch := w.pending
	w.pending = w.spare[:0]
	w.cond.Broadcast() // room for writers waiting on maxPending
	w.mu.Unlock()
	_, err := w.w.Write(batch)
	w.mu.Lock()
	w.spare = batch[:0]
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
		if len(w.pending) == 0 || w.err != nil {
			w.release()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		runtime.Gosched() // as in write: let ready writers join the batch
		w.writeBatch()
	}
}

// fail records the first write error. Called with mu held.
func (w *writer) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// release gives up ownership. Called with mu held.
func (w *writer) release() {
	if w.err != nil {
		w.pending, w.spare = nil, nil
	}
	if cap(w.spare) > 4*w.maxPending {
		w.spare = nil // one huge frame should not pin its memory forever
	}
	if w.queued {
		w.contended = yieldStreak
	} else if w.contended > 0 {
		w.contended--
	}
	w.owned = false
	w.cond.Broadcast()
}

// close refuses new frames and waits until what is pending has been written
// or has failed. The caller bounds the wait with a write deadline.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	for w.owned {
		w.cond.Wait()
	}
	w.owned = true // nobody writes again
	w.mu.Unlock()
	w.flusher.Wait()
}
