// Package ignorecase lets service methods match their routes without
// regard to case: with it, a CALL to "/Math/ADD" is served by "/math/add".
//
//	srv, err := tp.NewPeer(cfg, ignorecase.New())
//
// It is a peer plugin: header hooks, which run before the route is looked
// up, belong to the peer. Routes that differ only in case cannot both be
// registered under it. An exact match costs a map lookup; a name with
// capitals also one lowercase copy.
package ignorecase

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/seed-a9a850dd/tp"
)

// Plugin is the plugin.
type Plugin struct {
	mu   sync.Mutex // serializes registration
	call atomic.Pointer[map[string]string]
	push atomic.Pointer[map[string]string]
}

var (
	_ tp.PostRegPlugin            = (*Plugin)(nil)
	_ tp.PostReadCallHeaderPlugin = (*Plugin)(nil)
	_ tp.PostReadPushHeaderPlugin = (*Plugin)(nil)
)

// New returns the plugin.
func New() *Plugin {
	ic := &Plugin{}
	ic.call.Store(&map[string]string{})
	ic.push.Store(&map[string]string{})
	return ic
}

// Name implements tp.Plugin.
func (ic *Plugin) Name() string { return "ignorecase" }

// PostReg records the route under its lowercase name.
func (ic *Plugin) PostReg(h *tp.Handler) error {
	if h.Name() == "" {
		return nil // an unknown-call or unknown-push handler
	}
	table := &ic.push
	if h.IsCall() {
		table = &ic.call
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	lower := strings.ToLower(h.Name())
	if other, dup := (*table.Load())[lower]; dup && other != h.Name() {
		return tp.NewStatus(tp.CodeInvalidArgument, fmt.Sprintf("ignorecase: routes %q and %q differ only in case", other, h.Name()), nil)
	}
	next := maps.Clone(*table.Load())
	next[lower] = h.Name()
	table.Store(&next)
	return nil
}

// PostReadCallHeader rewrites a CALL's service method to its route's.
func (ic *Plugin) PostReadCallHeader(c tp.ReadCtx) error {
	rewrite(c, *ic.call.Load())
	return nil
}

// PostReadPushHeader rewrites a PUSH's service method to its route's.
func (ic *Plugin) PostReadPushHeader(c tp.ReadCtx) error {
	rewrite(c, *ic.push.Load())
	return nil
}

func rewrite(c tp.ReadCtx, routes map[string]string) {
	m := c.Input()
	if name, ok := routes[strings.ToLower(m.ServiceMethod)]; ok {
		m.ServiceMethod = name
	}
}
