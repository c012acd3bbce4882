package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
)

func printJSON(r any) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// report prints a Markdown table: per layout and system, the median of the
// rounds (and for throughput, the range), and each system's throughput as
// a ratio of tp's.
func report(w io.Writer, o options, systems []string, results []result) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s %s/%s. %d calls per measurement",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.n)
	if o.compare || o.http {
		fmt.Fprintf(w, ", %d alternating rounds, medians shown", o.rounds)
	}
	fmt.Fprintf(w, ". tp: proto %s, codec %s", o.proto, o.codec)
	if o.xfer != "" {
		fmt.Fprintf(w, ", xfer %s", o.xfer)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| callers × sessions | system | calls/s (min–max) | vs tp | p50 ms | p99 ms | p99.9 ms | calls/CPU-s | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, l := range o.layouts() {
		var tpTput float64
		for _, name := range systems {
			var rs []result
			for _, r := range results {
				if r.System == name && r.Callers == l.callers && r.Sessions == l.sessions {
					rs = append(rs, r)
				}
			}
			if len(rs) == 0 {
				continue
			}
			tput := median(rs, func(r result) float64 { return r.Throughput })
			lo, hi := extent(rs, func(r result) float64 { return r.Throughput })
			if name == "tp" {
				tpTput = tput
			}
			ratio := "—"
			if tpTput > 0 {
				ratio = fmt.Sprintf("%.2f×", tput/tpTput)
			}
			var errs int64
			for _, r := range rs {
				errs += r.Errors
			}
			fmt.Fprintf(w, "| %d × %d | %s | %.0f (%.0f–%.0f) | %s | %.3f | %.3f | %.3f | %.0f | %d |\n",
				l.callers, l.sessions, name, tput, lo, hi, ratio,
				median(rs, func(r result) float64 { return r.P50MS }),
				median(rs, func(r result) float64 { return r.P99MS }),
				median(rs, func(r result) float64 { return r.P999MS }),
				median(rs, func(r result) float64 { return r.CPUCallsPerS }),
				errs)
		}
	}
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func extent(rs []result, f func(result) float64) (lo, hi float64) {
	lo, hi = f(rs[0]), f(rs[0])
	for _, r := range rs[1:] {
		lo, hi = min(lo, f(r)), max(hi, f(r))
	}
	return lo, hi
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
