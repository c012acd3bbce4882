// Command restart shows a graceful restart: a server process hands its
// listener to a new process on SIGHUP while a client keeps calling, and
// no call fails.
//
//	go run ./examples/restart
//
// Run as it is, the program is the client: it starts the server as a child
// process, calls it continuously, sends it SIGHUP, and reports which
// processes served the calls. The server part (serve) is what an
// application does: tp leaves the signal and the handoff to it.
package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp"
)

const roleEnv = "RESTART_EXAMPLE_ROLE"

// Pid says which process served the call.
func Pid(ctx tp.CallCtx, _ *struct{}) (int, *tp.Status) { return os.Getpid(), nil }

func main() {
	switch os.Getenv(roleEnv) {
	case "server":
		serve(nil)
	case "successor":
		serve(os.NewFile(3, "listener")) // the listener its predecessor handed over
	default:
		client()
	}
}

// serve listens (or takes over inherited), prints its address, and on
// SIGHUP starts its successor with the listener, waits until that one
// serves, then closes gracefully: calls in flight finish, and clients move.
func serve(inherited *os.File) {
	srv, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	srv.RouteCallFunc(Pid)
	var ln net.Listener
	if inherited != nil {
		ln, err = net.FileListener(inherited)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("LISTEN", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM)
	go func() {
		if s := <-sig; s == syscall.SIGHUP {
			f, err := ln.(*net.TCPListener).File()
			if err != nil {
				log.Fatal(err)
			}
			next := exec.Command(os.Args[0])
			next.Env = append(os.Environ(), roleEnv+"=successor")
			next.ExtraFiles = []*os.File{f}
			next.Stderr = os.Stderr
			out, _ := next.StdoutPipe()
			if err := next.Start(); err != nil {
				log.Fatal(err)
			}
			bufio.NewReader(out).ReadString('\n') // it is listening
			fmt.Println("SUCCESSOR", next.Process.Pid)
		}
		srv.Close()
		os.Exit(0)
	}()
	srv.Serve(ln)
	select {} // Serve returns at Close; the goroutine above exits
}

func client() {
	first := exec.Command(os.Args[0])
	first.Env = append(os.Environ(), roleEnv+"=server")
	first.Stderr = os.Stderr
	out, _ := first.StdoutPipe()
	if err := first.Start(); err != nil {
		log.Fatal(err)
	}
	lines := bufio.NewReader(out)
	line, _ := lines.ReadString('\n')
	addr := strings.TrimPrefix(strings.TrimSpace(line), "LISTEN ")

	cli, err := tp.NewPeer(tp.PeerConfig{RedialTimes: -1, RedialInterval: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), addr)
	if err != nil {
		log.Fatal(err)
	}
	served := map[int]int{}
	call := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var pid int
		if err := sess.Call(ctx, "/pid", nil, &pid).Err(); err != nil {
			log.Fatalf("a call failed: %v", err)
		}
		served[pid]++
	}
	for range 200 {
		call()
	}
	first.Process.Signal(syscall.SIGHUP) // the application's choice of signal
	line, _ = lines.ReadString('\n')
	var next int
	fmt.Sscanf(line, "SUCCESSOR %d", &next)
	for served[next] < 200 {
		call()
	}
	first.Wait()
	if p, err := os.FindProcess(next); err == nil {
		p.Signal(syscall.SIGTERM) // the successor closes gracefully too
	}
	// How many calls the first process takes after SIGHUP depends on timing,
	// so the counts follow the stable part of the line.
	fmt.Printf("%d processes served the calls across the restart; none failed (first %d, successor %d)\n",
		len(served), served[first.Process.Pid], served[next])
}
