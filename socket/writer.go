package socket

import (
	"io"
	"sync"
)

// writer puts frames on a connection from many goroutines, sharing
// syscalls between them.
//
// Concurrency rules: at most one goroutine writes to the conn at a time, the
// owner. A writer that finds no owner becomes it and writes its frame
// directly, so a lone caller pays no goroutine handoff. Writers that arrive
// while a write is in flight append their frames to pending and return at
// once. When the owner finishes and pending is not empty, it hands ownership
// to a flusher goroutine, which writes everything pending in one syscall per
// round until pending is empty. Frames are copied into pending, so a
// caller's buffer is free again as soon as write returns.
//
// Pending is bounded: past maxPending bytes, writers wait for the flusher.
// A write error is sticky: every later write fails with it and what was
// pending is dropped, as the connection is broken anyway.
type writer struct {
	w          io.Writer
	maxPending int

	mu      sync.Mutex
	cond    sync.Cond // broadcast when pending shrinks or ownership is released
	owned   bool      // a goroutine is writing to w
	closed  bool
	err     error
	pending []byte
	spare   []byte // the flusher's other buffer, swapped with pending
	flusher sync.WaitGroup
}

func (w *writer) init(dst io.Writer, maxPending int) {
	w.w = dst
	w.maxPending = maxPending
	w.cond.L = &w.mu
}

// write puts frame on the wire or in line for it. It returns errClosed after
// close and the sticky error after a failed write.
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
			return errClosed
		}
		if !w.owned {
			break
		}
		if len(w.pending) < w.maxPending {
			w.pending = append(w.pending, frame...)
			w.mu.Unlock()
			return nil
		}
		w.cond.Wait()
	}
	w.owned = true
	w.mu.Unlock()

	_, err := w.w.Write(frame)

	w.mu.Lock()
	w.fail(err)
	if len(w.pending) > 0 && w.err == nil {
		w.flusher.Add(1)
		go w.flush() // ownership passes to the flusher
	} else {
		w.release()
	}
	w.mu.Unlock()
	return err
}

// flush writes what is pending until nothing is; it owns the writer while
// it runs.
func (w *writer) flush() {
	defer w.flusher.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) > 0 && w.err == nil {
		batch := w.pending
		w.pending = w.spare[:0]
		w.cond.Broadcast() // room for writers waiting on maxPending
		w.mu.Unlock()
		_, err := w.w.Write(batch)
		w.mu.Lock()
		w.spare = batch[:0]
		w.fail(err)
	}
	w.release()
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
