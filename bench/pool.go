package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
)

// ---- -pool: the discovery client over several server processes ----
//
// Each round measures, in turn, a bare session to one server (the
// reference) and a discovery.Client (round robin, one session per server)
// over 1, 2, 3... server processes, all on this machine. The client's
// overhead is its throughput over one server against the bare session's.

type poolClient struct {
	sys  *tpSystem
	peer *tp.Peer
	c    *discovery.Client
}

func dialPool(s *tpSystem, addrs []string) (client, error) {
	peer, err := tp.NewPeer(s.cfg)
	if err != nil {
		return nil, err
	}
	r := new(discovery.Static)
	r.Set("bench", discovery.Addrs(addrs...)...)
	c, err := discovery.NewClient(peer, r, discovery.Config{Service: "bench"})
	if err != nil {
		peer.Close()
		return nil, err
	}
	return &poolClient{sys: s, peer: peer, c: c}, nil
}

func (p *poolClient) call(_ int, req, resp *benchpb.BenchmarkMessage) error {
	return p.c.Call(context.Background(), "/echo", req, resp, p.sys.settings...)
}

func (p *poolClient) close() {
	p.c.Close()
	p.peer.Close()
}

func measurePool(o options) error {
	if o.transport != "tcp" {
		return fmt.Errorf("-pool runs over tcp")
	}
	type entry struct {
		name    string
		servers int
	}
	entries := []entry{{"session", 1}}
	for _, k := range o.pool {
		entries = append(entries, entry{fmt.Sprintf("pool/%d", k), k})
	}
	prog := newProgress(len(o.callers) * len(entries) * o.rounds * o.n)
	defer prog.stop()
	var results []result
	for _, callers := range o.callers {
		for r := 1; r <= o.rounds; r++ {
			for _, e := range entries {
				prog.label.Store(fmt.Sprintf("%s, %d callers, round %d/%d", e.name, callers, r, o.rounds))
				res, err := measurePoolOne(o, e.name, e.servers, callers, prog)
				if err != nil {
					return fmt.Errorf("%s: %w", e.name, err)
				}
				res.Round = r
				results = append(results, res)
				if o.json {
					prog.clear()
					printJSON(res)
				}
			}
		}
	}
	prog.stop()
	if !o.json {
		reportPool(os.Stdout, o, results)
	}
	return nil
}

func measurePoolOne(o options, name string, servers, callers int, prog *progress) (result, error) {
	sys, err := newTP(o)
	if err != nil {
		return result{}, err
	}
	var procs []*serverProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	var addrs []string
	for range servers {
		p, err := startServer("tp", o)
		if err != nil {
			return result{}, err
		}
		procs = append(procs, p)
		addrs = append(addrs, p.addr)
	}
	var cl client
	if name == "session" {
		cl, err = sys.dial(addrs[0], 1)
	} else {
		cl, err = dialPool(sys, addrs)
	}
	if err != nil {
		return result{}, err
	}
	defer cl.close()
	serverCPU := func() time.Duration {
		var d time.Duration
		for _, p := range procs {
			d += p.cpu()
		}
		return d
	}
	return measureClient(o, name, layout{callers, servers}, cl, prog, serverCPU), nil
}

func reportPool(w io.Writer, o options, results []result) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s %s/%s. %d calls per measurement, %d alternating rounds, medians shown. tp: proto %s, codec %s.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.n, o.rounds, o.proto, o.codec)
	fmt.Fprintln(w, "| callers | client | servers | calls/s (min–max) | vs session | p50 ms | p99 ms | calls/CPU-s | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, callers := range o.callers {
		var base float64
		names := []string{"session"}
		for _, k := range o.pool {
			names = append(names, fmt.Sprintf("pool/%d", k))
		}
		for _, name := range names {
			var rs []result
			for _, r := range results {
				if r.System == name && r.Callers == callers {
					rs = append(rs, r)
				}
			}
			if len(rs) == 0 {
				continue
			}
			tput := median(rs, func(r result) float64 { return r.Throughput })
			lo, hi := extent(rs, func(r result) float64 { return r.Throughput })
			if name == "session" {
				base = tput
			}
			var errs int64
			for _, r := range rs {
				errs += r.Errors
			}
			fmt.Fprintf(w, "| %d | %s | %d | %.0f (%.0f–%.0f) | %.2f× | %.3f | %.3f | %.0f | %d |\n",
				callers, name, rs[0].Sessions, tput, lo, hi, tput/base,
				median(rs, func(r result) float64 { return r.P50MS }),
				median(rs, func(r result) float64 { return r.P99MS }),
				median(rs, func(r result) float64 { return r.CPUCallsPerS }), errs)
		}
	}
}
