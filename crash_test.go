package tp_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// childServeEnv makes this test binary a server process (see TestMain).
const childServeEnv = "TP_TEST_SERVE"

// childServe serves Ping and Sleepy on addr, or on the listener inherited
// as file descriptor 3 when addr is "fd:3", and prints "LISTEN addr". It
// runs until it is killed, or, on SIGHUP, hands its listener to a new
// process as an application would for a graceful restart (see
// examples/restart): start the successor with the listener's file, wait
// until it listens, then Close gracefully and exit.
func childServe(addr string) {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	srv.RouteCallFunc(Ping)
	srv.RouteCallFunc(Sleepy)
	var ln net.Listener
	if addr == "fd:3" {
		ln, err = net.FileListener(os.NewFile(3, "listener"))
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("LISTEN", ln.Addr())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-hup
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		next := exec.Command(os.Args[0], "-test.run=^$")
		next.Env = append(os.Environ(), childServeEnv+"=fd:3")
		next.ExtraFiles = []*os.File{f}
		out, _ := next.StdoutPipe()
		if err := next.Start(); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		line, _ := bufio.NewReader(out).ReadString('\n') // its LISTEN line: it serves
		fmt.Println("SUCCESSOR", next.Process.Pid, strings.TrimSpace(line))
		srv.Close() // finish accepted calls; peers that redial move to the successor
		os.Exit(0)
	}()
	srv.Serve(ln)
	select {} // Serve returns at Close; the SIGHUP goroutine exits the process
}

// startChild runs a server process on addr and returns it with the
// address it listens on.
func startChild(t *testing.T, addr string) (*exec.Cmd, string) {
	cmd, got, _ := startChildOut(t, addr)
	return cmd, got
}

// startChildOut is startChild that also returns the rest of its output.
func startChildOut(t *testing.T, addr string) (*exec.Cmd, string, *bufio.Reader) {
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
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	got, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
	if err != nil || !ok {
		t.Fatalf("server process said %q, %v", line, err)
	}
	return cmd, got, r
}

func TestCrashAndRestart(t *testing.T) {
	child, addr := startChild(t, "127.0.0.1:0")
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 20 * time.Millisecond})
	sess := dial(t, cli, addr)

	const deadline = 2 * time.Second
	var ok, closed, timedOut, afterRestart atomic.Int64
	var restarted atomic.Bool
	stop := callers(50, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		var n int
		st := sess.Call(ctx, "/sleepy", 5, &n).Status() // 5 ms in the handler: calls are in flight at the kill
		if took := time.Since(start); took > deadline+500*time.Millisecond {
			t.Errorf("a call took %v with a %v deadline", took, deadline)
		}
		switch tp.CodeOf(st) {
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
		return true
	})
	waitFor(t, "calls to succeed", func() bool { return ok.Load() > 200 })
	child.Process.Kill() // SIGKILL: no goodbye
	child.Wait()
	waitFor(t, "the client to notice", func() bool { return !sess.Health() })

	startChild(t, addr)
	restarted.Store(true)
	waitFor(t, "calls to succeed after the restart", func() bool { return afterRestart.Load() > 200 })
	stop()
	t.Logf("%d calls succeeded, %d failed with connection closed, %d timed out in the outage", ok.Load(), closed.Load(), timedOut.Load())
	if closed.Load() == 0 {
		t.Error("no call was in flight at the kill; the test did not test it")
	}
}

// TestGracefulRestart hands a server's listener to a new process under load:
// the client sees no refused connection and no failed call.
func TestGracefulRestart(t *testing.T) {
	old, addr, out := startChildOut(t, "127.0.0.1:0")
	var log syncBuffer // a refused connection would show as a failed redial
	cli := newPeer(t, tp.PeerConfig{RedialTimes: -1, RedialInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	sess := dial(t, cli, addr)

	var ok, moved atomic.Int64
	var restarted atomic.Bool
	stop := callers(20, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var n int
		if err := sess.Call(ctx, "/sleepy", 2, &n).Err(); err != nil {
			t.Errorf("a call failed across the restart: %v", err)
			return false
		}
		ok.Add(1)
		if restarted.Load() {
			moved.Add(1)
		}
		return true
	})
	waitFor(t, "calls to succeed", func() bool { return ok.Load() > 100 })
	if err := old.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line, err := out.ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) < 2 || f[0] != "SUCCESSOR" {
		t.Fatalf("the old server said %q, %v", line, err)
	}
	pid, _ := strconv.Atoi(f[1])
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	})
	old.Wait() // the old process finished its calls and exited
	restarted.Store(true)
	waitFor(t, "calls served by the new process", func() bool { return moved.Load() > 100 })
	stop()
	t.Logf("%d calls, %d after the old process exited; none failed", ok.Load(), moved.Load())
	if strings.Contains(log.String(), "redial failed") {
		t.Fatalf("a redial failed during the restart:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "redialed") {
		t.Fatal("the client never moved to a new connection")
	}
}
