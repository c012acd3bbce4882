// Package etcd finds tp servers through etcd: a server registers itself
// with the Register plugin, and a discovery.Client follows a service's
// servers with a Resolver.
//
// A server's entry is a key under the lease it keeps alive:
//
//	<prefix><service>/<addr>  →  the discovery.Endpoint as JSON
//
// The plugin registers when the peer starts listening (PostListen) and
// deregisters first thing in Close (PreClose), before the peer refuses any
// work; a server that dies without closing drops out when its lease
// expires, TTL later. While etcd is unreachable, servers keep their
// leases' keep-alive going and re-register when it is back (a lease that
// expired meanwhile is replaced); clients keep calling the endpoints they
// know and resynchronize when it returns.
package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultPrefix is where services live when no prefix is given.
const DefaultPrefix = "/tp/services/"

func prefixOr(p string) string {
	if p == "" {
		return DefaultPrefix
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// servicePrefix is the prefix of every key of service.
func servicePrefix(prefix, service string) string { return prefixOr(prefix) + service + "/" }

// Resolver is a discovery.Resolver reading etcd.
type Resolver struct {
	cli    *clientv3.Client
	prefix string
}

// NewResolver returns a resolver of the services under prefix ("" means
// DefaultPrefix) in cli's etcd.
func NewResolver(cli *clientv3.Client, prefix string) *Resolver {
	return &Resolver{cli: cli, prefix: prefixOr(prefix)}
}

// Watch implements discovery.Resolver: it reads the service's keys, sends
// the set, and follows changes from that revision on. When the watch
// breaks (etcd unreachable, history compacted), the last set stands and
// the resolver reads the keys again once etcd answers.
func (r *Resolver) Watch(ctx context.Context, service string) (<-chan []discovery.Endpoint, error) {
	if service == "" || strings.Contains(service, "/") {
		return nil, fmt.Errorf("etcd: service name %q is empty or has a /", service)
	}
	ch := make(chan []discovery.Endpoint, 1)
	go r.follow(ctx, servicePrefix(r.prefix, service), ch)
	return ch, nil
}

func (r *Resolver) follow(ctx context.Context, prefix string, ch chan []discovery.Endpoint) {
	defer close(ch)
	var pause time.Duration
	var last []discovery.Endpoint
	sent := false
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := r.cli.Get(gctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			pause = min(max(2*pause, 50*time.Millisecond), time.Second)
			sleep(ctx, pause)
			continue
		}
		pause = 0
		set := map[string]discovery.Endpoint{}
		for _, kv := range resp.Kvs {
			set[string(kv.Key)] = decode(prefix, kv.Key, kv.Value)
		}
		if eps := list(set); !sent || !same(eps, last) {
			offer(ch, eps)
			last, sent = eps, true
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for w := range r.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if w.Err() != nil {
				break // read again
			}
			for _, ev := range w.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					set[string(ev.Kv.Key)] = decode(prefix, ev.Kv.Key, ev.Kv.Value)
				case clientv3.EventTypeDelete:
					delete(set, string(ev.Kv.Key))
				}
			}
			last = list(set)
			offer(ch, last)
		}
		cancel()
		sleep(ctx, 50*time.Millisecond)
	}
}

// decode reads an entry; one that is not JSON still names its address.
func decode(prefix string, key, value []byte) discovery.Endpoint {
	var ep discovery.Endpoint
	if json.Unmarshal(value, &ep) != nil || ep.Addr == "" {
		ep = discovery.Endpoint{Addr: strings.TrimPrefix(string(key), prefix)}
	}
	return ep
}

func list(set map[string]discovery.Endpoint) []discovery.Endpoint {
	eps := make([]discovery.Endpoint, 0, len(set))
	for _, ep := range set {
		eps = append(eps, ep)
	}
	return eps
}

func same(a, b []discovery.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, ep := range a {
		m[ep.Addr] = true
	}
	for _, ep := range b {
		if !m[ep.Addr] {
			return false
		}
	}
	return true
}

// offer puts eps in ch in place of a set not yet taken.
func offer(ch chan []discovery.Endpoint, eps []discovery.Endpoint) {
	select {
	case <-ch:
	default:
	}
	ch <- eps
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Options configures a registration.
type Options struct {
	// Prefix is where services live; "" means DefaultPrefix.
	Prefix string
	// Endpoint is what clients read. An empty Addr means the address the
	// peer listens on: set it when clients must dial another one (a
	// listener on 0.0.0.0, a NAT).
	Endpoint discovery.Endpoint
	// TTL is the lease's: how long after a crash the entry lingers. etcd
	// counts whole seconds; 0 means 10 s, and less than 1 s is 1 s.
	TTL time.Duration
	// Timeout bounds each etcd request, and deregistering within Close;
	// 0 means 2 s.
	Timeout time.Duration
}

// Registration is the plugin that keeps a peer registered under a service
// while it serves. Add it to NewPeer; it registers the first listener's
// address.
type Registration struct {
	cli     *clientv3.Client
	service string
	opts    Options

	mu      sync.Mutex
	key     string
	value   string
	cancel  context.CancelFunc
	done    chan struct{}
	leaseID clientv3.LeaseID
	ready   chan struct{} // closed once the entry is first written
	once    sync.Once
}

var (
	_ tp.PostListenPlugin = (*Registration)(nil)
	_ tp.PreClosePlugin   = (*Registration)(nil)
)

// Register returns the plugin registering a peer as a server of service in
// cli's etcd.
func Register(cli *clientv3.Client, service string, opts Options) *Registration {
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	opts.TTL = max(opts.TTL, time.Second)
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	return &Registration{cli: cli, service: service, opts: opts, ready: make(chan struct{})}
}

// Name implements tp.Plugin.
func (r *Registration) Name() string { return "etcd-register" }

// Registered is closed once the entry is in etcd for the first time.
func (r *Registration) Registered() <-chan struct{} { return r.ready }

// PostListen registers addr (or Options.Endpoint.Addr) and keeps the
// lease alive until PreClose.
func (r *Registration) PostListen(addr net.Addr) error {
	if r.service == "" || strings.Contains(r.service, "/") {
		return fmt.Errorf("etcd: service name %q is empty or has a /", r.service)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return nil // registered for an earlier listener
	}
	ep := r.opts.Endpoint
	if ep.Addr == "" {
		ep.Addr = addr.String()
	}
	b, err := json.Marshal(ep)
	if err != nil {
		return fmt.Errorf("etcd: encoding the endpoint: %w", err)
	}
	r.key, r.value = servicePrefix(r.opts.Prefix, r.service)+ep.Addr, string(b)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.keep(ctx)
	return nil
}

// keep writes the entry under a fresh lease and keeps the lease alive;
// when the keep-alive ends (etcd gone long enough for the lease to
// expire, or unreachable), it starts over.
func (r *Registration) keep(ctx context.Context) {
	defer close(r.done)
	var pause time.Duration
	for ctx.Err() == nil {
		alive, err := r.register(ctx)
		if err != nil {
			pause = min(max(2*pause, 50*time.Millisecond), time.Second)
			sleep(ctx, pause)
			continue
		}
		pause = 0
		r.once.Do(func() { close(r.ready) })
		for range alive {
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// register grants a lease, writes the entry under it, and starts its
// keep-alive.
func (r *Registration) register(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	rctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	lease, err := r.cli.Grant(rctx, int64((r.opts.TTL+time.Second-1)/time.Second))
	if err != nil {
		return nil, err
	}
	if _, err := r.cli.Put(rctx, r.key, r.value, clientv3.WithLease(lease.ID)); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.leaseID = lease.ID
	r.mu.Unlock()
	return r.cli.KeepAlive(ctx, lease.ID)
}

// PreClose deregisters: it stops the keep-alive and revokes the lease,
// which deletes the entry, so clients stop sending before the peer
// refuses work.
func (r *Registration) PreClose(ctx context.Context) error {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	r.mu.Lock()
	id := r.leaseID
	r.mu.Unlock()
	ctx, stop := context.WithTimeout(ctx, r.opts.Timeout)
	defer stop()
	if id != 0 {
		r.cli.Revoke(ctx, id) // best effort: the delete is what counts
	}
	if _, err := r.cli.Delete(ctx, r.key); err != nil {
		return fmt.Errorf("etcd: deregistering %s: %w", r.key, err)
	}
	return nil
}
