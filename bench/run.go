package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp/internal/benchpb"
)

// layout is one arrangement of callers over sessions.
type layout struct{ callers, sessions int }

func (l layout) String() string { return fmt.Sprintf("%d callers, %d sessions", l.callers, l.sessions) }

// result is one measurement; its JSON is the -json output.
type result struct {
	System       string  `json:"system"`
	Callers      int     `json:"callers"`
	Sessions     int     `json:"sessions"`
	Round        int     `json:"round"`
	Calls        int     `json:"calls"`
	Throughput   float64 `json:"throughput"`
	MeanMS       float64 `json:"mean_ms"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	P999MS       float64 `json:"p999_ms"`
	CPUCallsPerS float64 `json:"cpu_calls_per_s"`
	Errors       int64   `json:"errors"`
}

func (o options) layouts() []layout {
	var ls []layout
	for _, s := range o.sessions {
		for _, c := range o.callers {
			ls = append(ls, layout{c, s})
		}
	}
	return ls
}

// measure runs the plan: every layout for one system, or with -compare,
// rounds that alternate the systems within each layout.
func measure(o options) error {
	systems := []string{o.system}
	rounds := 1
	if o.compare {
		systems, rounds = systemNames, o.rounds
	}
	if o.http {
		systems, rounds = httpSystemNames, o.rounds
		o.codec = "json"
	}
	if o.client != "" && o.compare {
		return fmt.Errorf("-compare starts its own servers; it cannot be used with -client")
	}
	ls := o.layouts()
	prog := newProgress(len(ls) * len(systems) * rounds * o.n)
	defer prog.stop()
	stopProfile := startProfile(o.cpuprofile)
	defer stopProfile()

	var results []result
	for _, l := range ls {
		for r := 1; r <= rounds; r++ {
			for _, name := range systems {
				prog.label.Store(fmt.Sprintf("%s, %s, round %d/%d", name, l, r, rounds))
				res, err := measureOne(o, name, l, prog)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", name, l, err)
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
		report(os.Stdout, o, systems, results)
	}
	return nil
}

// measureOne starts the system's server (unless -client names one), warms
// up, and measures o.n calls.
func measureOne(o options, name string, l layout, prog *progress) (result, error) {
	sys, err := newSystem(name, o)
	if err != nil {
		return result{}, err
	}
	addr := o.client
	var srv *serverProc
	if addr == "" {
		if srv, err = startServer(name, o); err != nil {
			return result{}, err
		}
		defer srv.stop()
		addr = srv.addr
	}
	cl, err := sys.dial(addr, l.sessions)
	if err != nil {
		return result{}, err
	}
	defer cl.close()
	return measureClient(o, name, l, cl, prog, srv.cpu), nil
}

// measureClient warms cl up, then measures o.n calls. serverCPU is the CPU
// the servers have used so far.
func measureClient(o options, name string, l layout, cl client, prog *progress, serverCPU func() time.Duration) result {
	load(cl, l, min(o.n/10, 20_000), nil) // warm up: connections, pools, caches
	cpu0, srv0 := selfCPU(), serverCPU()
	start := time.Now()
	lat, errs := load(cl, l, o.n, prog)
	wall := time.Since(start)
	cpu := selfCPU() - cpu0 + serverCPU() - srv0

	res := result{System: name, Callers: l.callers, Sessions: l.sessions, Calls: o.n, Errors: errs,
		Throughput: float64(o.n) / wall.Seconds()}
	if cpu > 0 {
		res.CPUCallsPerS = float64(o.n) / cpu.Seconds()
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.MeanMS = ms(sum / time.Duration(len(lat)))
	res.P50MS = ms(lat[len(lat)*50/100])
	res.P99MS = ms(lat[len(lat)*99/100])
	res.P999MS = ms(lat[len(lat)*999/1000])
	return res
}

// load makes n calls from l.callers goroutines, caller k on session k mod
// l.sessions, and returns every call's latency and the failures: errors
// and replies that were not marked "OK".
func load(cl client, l layout, n int, prog *progress) ([]time.Duration, int64) {
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	for k := range l.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := benchpb.New(), new(benchpb.BenchmarkMessage)
			sess := k % l.sessions
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				resp.Reset()
				start := time.Now()
				err := cl.call(sess, req, resp)
				lat[i] = time.Since(start)
				if err != nil || resp.GetField1() != "OK" {
					errs.Add(1)
				}
				if prog != nil {
					prog.done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return lat, errs.Load()
}

// serverProc is a server in a child process of this bench.
type serverProc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

func startServer(name string, o options) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-child", name, "-codec", o.codec, "-proto", o.proto, "-xfer", o.xfer, "-plugins", o.plugins, "-transport", o.transport}
	if o.cpuprofile != "" {
		args = append(args, "-cpuprofile", o.cpuprofile+".server")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr, err := readListen(stdout)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return &serverProc{cmd: cmd, stdin: stdin, addr: addr}, nil
}

// stop closes the child's stdin, which ends it, and waits.
func (s *serverProc) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the CPU time the child has used, from /proc; 0 for no child
// (with -client) or where /proc is missing.
func (s *serverProc) cpu() time.Duration {
	if s == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s on Linux.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// progress draws a bar on stderr while the bench runs.
type progress struct {
	total int64
	done  atomic.Int64
	label atomic.Value // string
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func newProgress(total int) *progress {
	p := &progress{total: int64(total), quit: make(chan struct{})}
	p.label.Store("")
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				p.clear()
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progress) draw() {
	const width = 30
	frac := float64(p.done.Load()) / float64(p.total)
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	fmt.Fprintf(os.Stderr, "\r[%s] %3.0f%%  %-50s", bar, frac*100, p.label.Load())
}

func (p *progress) clear() { fmt.Fprintf(os.Stderr, "\r%90s\r", "") }

func (p *progress) stop() {
	p.once.Do(func() {
		close(p.quit)
		p.wg.Wait()
	})
}
