// Package discovery calls a service that runs on many servers: a Resolver
// says where its servers are as they come and go (Static here; an etcd one
// in the discovery/etcd module), and a Client keeps sessions to each of
// them on a tp.Peer, spreads calls by a Selector (RoundRobin,
// WeightedRandom, LeastPending, ConsistentHash), steps around servers that
// fail or leave (FailMode, a breaker per endpoint) and broadcasts to all.
//
//	r := new(discovery.Static)
//	r.Set("math", discovery.Addrs("10.0.0.1:9090", "10.0.0.2:9090")...)
//	c, err := discovery.NewClient(peer, r, discovery.Config{Service: "math"})
//	err = c.Call(ctx, "/math/add", []int{1, 2}, &sum)
//
// What is safe to send again is decided per attempt. An attempt that
// provably never ran (never written, or refused by a server that is
// shutting down or overloaded) goes to another endpoint in every mode, so
// neither a server that dies nor one that leaves gracefully costs a call
// that had not reached it. An attempt that may have run is sent again only
// for routes Config.Idempotent names, by FailMode.
package discovery
