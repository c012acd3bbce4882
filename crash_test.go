package tp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// childServeEnv makes this test binary a server process (see TestMain).
const childServeEnv = "TP_TEST_SERVE"

// childServe serves Ping and Sleepy on addr, prints "LISTEN addr", and
// runs until it is killed.
func childServe(addr string) {
	srv := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	srv.RouteCallFunc(Ping)
	srv.RouteCallFunc(Sleepy)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("LISTEN", ln.Addr())
	srv.Serve(ln)
}

// startChild runs a server process on addr and returns it with the
// address it listens on.
func startChild(t *testing.T, addr string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServeEnv+"="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	got, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		t.Fatalf("server process said %q, %v", line, err)
	}
	return cmd, got
}

func TestCrashAndRestart(t *testing.T) {
	child, addr := startChild(t, "127.0.0.1:0")
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 20 * time.Millisecond})
	sess := dial(t, cli, addr)

	const deadline = 2 * time.Second
	var ok, closed, timedOut, afterRestart atomic.Int64
	var restarted atomic.Bool
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				var n int
				st := sess.Call(ctx, "/sleepy", 5, &n).Status() // 5 ms in the handler: calls are in flight at the kill
				took := time.Since(start)
				cancel()
				if took > deadline+500*time.Millisecond {
					t.Errorf("a call took %v with a %v deadline", took, deadline)
				}
				switch st.Code() {
				case tp.CodeOK:
					ok.Add(1)
					if restarted.Load() {
						afterRestart.Add(1)
					}
				case tp.CodeConnClosed:
					closed.Add(1)
				case tp.CodeTimeout: // made during the outage, waited for the redial
					timedOut.Add(1)
				default:
					t.Errorf("a call ended with %v", st)
				}
			}
		}()
	}
	waitFor(t, "calls to succeed", func() bool { return ok.Load() > 200 })
	child.Process.Kill() // SIGKILL: no goodbye
	child.Wait()
	waitFor(t, "the client to notice", func() bool { return !sess.Health() })

	startChild(t, addr)
	restarted.Store(true)
	waitFor(t, "calls to succeed after the restart", func() bool { return afterRestart.Load() > 200 })
	close(stop)
	wg.Wait()
	t.Logf("%d calls succeeded, %d failed with connection closed, %d timed out in the outage", ok.Load(), closed.Load(), timedOut.Load())
	if closed.Load() == 0 {
		t.Error("no call was in flight at the kill; the test did not test it")
	}
}
