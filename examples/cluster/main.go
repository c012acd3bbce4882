// Command cluster shows a service on three servers found through etcd: a
// client spreads calls over them, one server is killed, and it comes back.
//
//	go run ./examples/cluster              # starts its own etcd (the etcd binary on PATH)
//	go run ./examples/cluster -etcd http://127.0.0.1:2379
//
// The servers are this program started again with -server; each registers
// itself in etcd with the discovery/etcd plugin. The client follows the
// registrations with a discovery.Client and prints, each half second, how
// its calls spread and how many failed.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/discovery"
	"github.com/seed-a9a850dd/tp/discovery/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	etcdURL := flag.String("etcd", "", "an etcd to use; empty starts one on loopback")
	server := flag.String("server", "", "internal: serve as this named server, at -addr")
	addr := flag.String("addr", "127.0.0.1:0", "internal: the server's address")
	flag.Parse()
	log.SetFlags(0)
	if *server != "" {
		if err := serve(*etcdURL, *server, *addr); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *etcdURL == "" {
		url, stop, err := startEtcd()
		if err != nil {
			log.Fatal(err)
		}
		defer stop()
		*etcdURL = url
	}
	if err := run(*etcdURL); err != nil {
		log.Fatal(err)
	}
}

func newEtcdClient(url string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

// serve is one server of "greeter": it registers in etcd and serves until
// SIGTERM, then closes gracefully (deregistering first).
func serve(etcdURL, name, addr string) error {
	cli, err := newEtcdClient(etcdURL)
	if err != nil {
		return err
	}
	defer cli.Close()
	reg := etcd.Register(cli, "greeter", etcd.Options{TTL: 2 * time.Second})
	peer, err := tp.NewPeer(tp.PeerConfig{}, reg)
	if err != nil {
		return err
	}
	tp.HandleCall(peer.Router(), "/hello", func(_ tp.CallCtx, who *string) (string, error) {
		time.Sleep(2 * time.Millisecond) // some work
		return name, nil
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go peer.Serve(ln)
	<-reg.Registered()
	fmt.Println("READY", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return peer.Close()
}

// run starts three servers, calls them from 20 goroutines, kills one and
// starts it again.
func run(etcdURL string) error {
	servers := map[string]*exec.Cmd{}
	addrs := map[string]string{}
	start := func(name, addr string) error {
		cmd, a, err := startServer(etcdURL, name, addr)
		if err != nil {
			return err
		}
		servers[name], addrs[name] = cmd, a
		return nil
	}
	defer func() {
		for _, cmd := range servers {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}()
	for _, name := range []string{"alpha", "beta", "gamma"} {
		if err := start(name, ""); err != nil {
			return err
		}
	}

	cli, err := newEtcdClient(etcdURL)
	if err != nil {
		return err
	}
	defer cli.Close()
	peer, err := tp.NewPeer(tp.PeerConfig{})
	if err != nil {
		return err
	}
	defer peer.Close()
	client, err := discovery.NewClient(peer, etcd.NewResolver(cli, ""), discovery.Config{Service: "greeter", Selector: discovery.LeastPending()})
	if err != nil {
		return err
	}
	defer client.Close()

	var mu sync.Mutex
	spread, failed := map[string]int{}, 0
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, time.Second)
				var who string
				err := client.Call(cctx, "/hello", "cluster", &who)
				ccancel()
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					failed++
				} else if err == nil {
					spread[who]++
				}
				mu.Unlock()
			}
		}()
	}
	report := func(what string) {
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		var names []string
		for n := range spread {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %d", n, spread[n]))
		}
		fmt.Printf("%-34s calls: %s; failed: %d\n", what, strings.Join(parts, ", "), failed)
		clear(spread)
		failed = 0
	}

	report("three servers:")
	report("three servers:")
	servers["beta"].Process.Kill() // SIGKILL: no goodbye
	servers["beta"].Wait()
	delete(servers, "beta")
	fmt.Println("-- beta killed")
	report("beta dead (calls in flight fail):")
	report("beta dead:")
	if err := start("beta", addrs["beta"]); err != nil {
		return err
	}
	fmt.Println("-- beta restarted")
	report("beta back:")
	report("beta back:")
	servers["gamma"].Process.Signal(syscall.SIGTERM) // graceful: deregister, drain, close
	servers["gamma"].Wait()
	delete(servers, "gamma")
	fmt.Println("-- gamma stopped gracefully")
	report("gamma gone (no call fails):")
	return nil
}

// startServer starts this program as a server and waits until it is
// registered.
func startServer(etcdURL, name, addr string) (*exec.Cmd, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cmd := exec.Command(os.Args[0], "-server", name, "-addr", addr, "-etcd", etcdURL)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	a, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("server %s did not start: %q %v", name, line, err)
	}
	return cmd, a, nil
}

// startEtcd runs etcd on two free loopback ports with its data in a
// temporary directory.
func startEtcd() (url string, stop func(), err error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		return "", nil, fmt.Errorf("no etcd on PATH: install one (Debian: apt-get install etcd-server) or pass -etcd URL")
	}
	dir, err := os.MkdirTemp("", "tp-cluster-etcd")
	if err != nil {
		return "", nil, err
	}
	free := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return "http://" + ln.Addr().String()
	}
	client, peerURL := free(), free()
	cmd := exec.Command("etcd", "--name", "example", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "example="+peerURL)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	cli, err := newEtcdClient(client)
	if err != nil {
		stop()
		return "", nil, err
	}
	defer cli.Close()
	for deadline := time.Now().Add(15 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := cli.Get(ctx, "ready")
		cancel()
		if err == nil {
			return client, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("etcd did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
