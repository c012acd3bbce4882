package tp

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// hub holds a peer's live sessions. It keys them by a counter, which no
// two sessions share, and indexes them by ID, the name users set and
// look up. Every change of membership (a session joins, is renamed,
// replaced or closed) happens here, under mu, so the two maps always
// agree: a session is in both or in neither, and a closed or refused
// session in neither.
type hub struct {
	keys atomic.Uint64

	mu   sync.RWMutex
	all  map[uint64]*Session
	byID map[string]*Session
}

func (h *hub) init() {
	h.all = map[uint64]*Session{}
	h.byID = map[string]*Session{}
}

func (h *hub) nextKey() uint64 { return h.keys.Add(1) }

// add makes s one of the live sessions, unless it has closed meanwhile
// (errSessionClosed) or the peer holds max already (0: no cap). A session
// that SetID named replaces the one holding its ID, which add returns for
// the caller to end (see Session.replaced); one whose default ID (its
// remote address) is taken gets a longer one.
func (h *hub) add(s *Session, max int) (replaced *Session, st *Status) {
	h.mu.Lock()
	if s.loadState() == stateClosed || s.leftHub {
		h.mu.Unlock()
		return nil, errSessionClosed
	}
	id := s.ID()
	prev := h.byID[id]
	if prev != nil && !s.named {
		id = h.freeID(s)
		prev = nil
	}
	n := len(h.all)
	if prev != nil {
		n-- // s takes its place
	}
	if max > 0 && n >= max {
		h.mu.Unlock()
		return nil, NewStatus(CodeOverloaded, fmt.Sprintf("peer holds %d sessions, its limit; try again later", max), nil)
	}
	if prev != nil {
		h.drop(prev)
	}
	s.id.Store(&id)
	s.inHub = true
	h.all[s.key] = s
	h.byID[id] = s
	h.mu.Unlock()
	return prev, nil
}

// freeID is a default ID for s that no live session has: the remote
// address, then "remote|local", then that with the session's key.
func (h *hub) freeID(s *Session) string {
	id := s.ID() + "|" + s.LocalAddr().String()
	if _, taken := h.byID[id]; taken {
		id += "#" + strconv.FormatUint(s.key, 10)
	}
	return id
}

// drop takes s out of both maps for good. Called with mu held.
func (h *hub) drop(s *Session) {
	if s.inHub {
		delete(h.all, s.key)
		if h.byID[s.ID()] == s {
			delete(h.byID, s.ID())
		}
	}
	s.inHub, s.leftHub = false, true
}

// remove takes s out of the hub for good: a session that has closed.
func (h *hub) remove(s *Session) {
	h.mu.Lock()
	h.drop(s)
	h.mu.Unlock()
}

// rename sets s's ID. A live session moves to the new ID, replacing (and
// closing) another session that held it; one not live (starting, or
// closed) only takes the name, so the hub never gains an entry for it.
func (h *hub) rename(s *Session, id string) {
	h.mu.Lock()
	s.named = true
	if !s.inHub {
		s.id.Store(&id)
		h.mu.Unlock()
		return
	}
	if h.byID[s.ID()] == s {
		delete(h.byID, s.ID())
	}
	prev := h.byID[id]
	if prev == s {
		prev = nil
	}
	if prev != nil {
		h.drop(prev)
	}
	s.id.Store(&id)
	h.byID[id] = s
	h.mu.Unlock()
	if prev != nil {
		prev.replaced()
	}
}

func (h *hub) get(id string) (*Session, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s, ok := h.byID[id]
	return s, ok
}

func (h *hub) count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// each calls fn on a snapshot, so fn may close sessions, until fn returns
// false: an iter.Seq.
func (h *hub) each(fn func(*Session) bool) {
	h.mu.RLock()
	all := make([]*Session, 0, len(h.all))
	for _, s := range h.all {
		all = append(all, s)
	}
	h.mu.RUnlock()
	for _, s := range all {
		if !fn(s) {
			return
		}
	}
}
