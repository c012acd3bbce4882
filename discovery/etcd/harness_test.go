package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/discovery/etcd"
	"github.com/seed-a9a850dd/tp/internal/tptest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// The tests run a real etcd (Debian's etcd-server package: the etcd binary
// on PATH) and real tp server processes: this test binary started again
// with TP_ETCD_TEST_SERVER set, killed with SIGKILL or stopped with
// SIGTERM.

func TestMain(m *testing.M) {
	if os.Getenv("TP_ETCD_TEST_SERVER") != "" {
		if err := serverMain(); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		return
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// serverMain is a tp server of "svc" registered in etcd: /who answers its
// name after arg milliseconds. SIGTERM closes it gracefully.
func serverMain() error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{os.Getenv("TP_ETCD")}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	reg := etcd.Register(cli, "svc", etcd.Options{TTL: 2 * time.Second})
	peer, err := tp.NewPeer(tp.PeerConfig{ShutdownTimeout: 5 * time.Second, Logger: tptest.Quiet}, reg)
	if err != nil {
		return err
	}
	name := os.Getenv("TP_NAME")
	tp.HandleCall(peer.Router(), "/who", func(ctx tp.CallCtx, ms *int) (string, error) {
		time.Sleep(time.Duration(*ms) * time.Millisecond)
		return name, nil
	})
	ln, err := net.Listen("tcp", os.Getenv("TP_ADDR"))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- peer.Serve(ln) }()
	select {
	case <-reg.Registered():
	case <-time.After(10 * time.Second):
		return fmt.Errorf("not registered in 10 s")
	}
	fmt.Println("READY", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	if err := peer.Close(); err != nil {
		return err
	}
	return <-served
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// etcdProc is an etcd server on loopback ports, with its data in a
// temporary directory that outlives a restart.
type etcdProc struct {
	t      *testing.T
	dir    string
	client string
	peer   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startEtcd(t *testing.T) *etcdProc {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatal("no etcd binary on PATH: install Debian's etcd-server package (apt-get install -y etcd-server), as .ci/run does")
	}
	e := &etcdProc{t: t, dir: t.TempDir(), client: "http://" + freeAddr(t), peer: "http://" + freeAddr(t)}
	e.start()
	t.Cleanup(e.kill)
	return e
}

func (e *etcdProc) start() {
	e.t.Helper()
	log, err := os.OpenFile(filepath.Join(e.dir, "etcd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer log.Close()
	e.cmd = exec.Command("etcd", "--name", "t", "--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", e.client, "--advertise-client-urls", e.client,
		"--listen-peer-urls", e.peer, "--initial-advertise-peer-urls", e.peer,
		"--initial-cluster", "t="+e.peer)
	e.cmd.Stdout, e.cmd.Stderr = log, log
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(e.cmd, e.exited)
	cli := e.newClient()
	defer cli.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(e.dir, "etcd.log"))
			e.t.Fatalf("etcd did not answer in 15 s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends etcd with SIGKILL, as a crash would.
func (e *etcdProc) kill() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Kill()
		<-e.exited
	}
}

func (e *etcdProc) newClient() *clientv3.Client {
	e.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.client}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatal(err)
	}
	return cli
}

// serverProc is a tp server process.
type serverProc struct {
	t      *testing.T
	name   string
	addr   string
	etcd   string
	cmd    *exec.Cmd
	exited chan error
}

// startServer starts a server named name on addr ("" for any port) and
// waits until it is registered.
func startServer(t *testing.T, e *etcdProc, name, addr string) *serverProc {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &serverProc{t: t, name: name, etcd: e.client}
	s.cmd = exec.Command(os.Args[0], "-test.run=^$")
	s.cmd.Env = append(os.Environ(), "TP_ETCD_TEST_SERVER=1", "TP_ETCD="+e.client, "TP_NAME="+name, "TP_ADDR="+addr)
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- a
			}
		}
		s.exited <- s.cmd.Wait()
	}()
	select {
	case s.addr = <-ready:
	case err := <-s.exited:
		t.Fatalf("server %s exited before it was ready: %v", name, err)
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("server %s not ready in 15 s", name)
	}
	t.Cleanup(func() { s.signal(syscall.SIGKILL) })
	return s
}

// signal sends sig and waits for the process to end; it returns how it
// ended.
func (s *serverProc) signal(sig syscall.Signal) error {
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exited:
		s.exited <- err // for a later caller
		return err
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		return fmt.Errorf("server %s still ran 10 s after %v", s.name, sig)
	}
}

// loadRun is callers calling /who until stopped.
type loadRun struct {
	mu   sync.Mutex
	errs []error
	per  map[string]int
	last map[string]time.Time // when each server last answered
	n    atomic.Int64
	quit chan struct{}
	wg   sync.WaitGroup
}

func startLoad(c *discovery.Client, callers int, ctxFor func() context.Context) *loadRun {
	l := &loadRun{per: map[string]int{}, last: map[string]time.Time{}, quit: make(chan struct{})}
	for range callers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.quit:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(ctxFor(), 2*time.Second)
				var who string
				err := c.Call(ctx, "/who", 5, &who)
				cancel()
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err)
				} else {
					l.per[who]++
					l.last[who] = time.Now()
				}
				l.mu.Unlock()
				l.n.Add(1)
			}
		}()
	}
	return l
}

func (l *loadRun) stop() {
	close(l.quit)
	l.wg.Wait()
}

// errors returns the failures so far, and forgets them.
func (l *loadRun) takeErrors() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errs
	l.errs = nil
	return errs
}

// answeredSince reports whether name answered a call after t.
func (l *loadRun) answeredSince(name string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[name].After(t)
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func newClient(t *testing.T, e *etcdProc, cfg discovery.Config) *discovery.Client {
	t.Helper()
	cli := e.newClient()
	t.Cleanup(func() { cli.Close() })
	peer := tptest.NewPeer(t, tp.PeerConfig{})
	cfg.Service = "svc"
	c, err := discovery.NewClient(peer, etcd.NewResolver(cli, ""), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
