package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// The stream benchmark: k bidirectional streams on one connection, each
// sending its share of n messages (the same 581-byte BenchmarkMessage) to
// a handler that marks and sends back each one, while the client reads
// the replies as they come.

// streamer is a system that streams.
type streamer interface {
	// openStreams opens k streams on one new connection to addr.
	openStreams(addr string, k int) ([]benchStream, func(), error)
}

type benchStream interface {
	send(*benchpb.BenchmarkMessage) error
	recv(*benchpb.BenchmarkMessage) error
	closeSend() error
}

// streamResult is one measurement of the stream benchmark.
type streamResult struct {
	System     string  `json:"system"`
	Streams    int     `json:"streams"`
	Round      int     `json:"round"`
	Messages   int     `json:"messages"`
	Throughput float64 `json:"messages_per_s"`
	MBPerS     float64 `json:"mb_per_s_each_way"`
	CPUPerS    float64 `json:"cpu_messages_per_s"`
	Errors     int64   `json:"errors"`
}

// streamSystems are the systems that stream.
var streamSystems = []string{"tp", "grpc"}

func measureStreams(o options) error {
	systems := []string{o.system}
	rounds := 1
	if o.compare {
		systems, rounds = streamSystems, o.rounds
	}
	size := proto.Size(benchpb.New())
	var results []streamResult
	for _, k := range o.streams {
		for r := 1; r <= rounds; r++ {
			for _, name := range systems {
				fmt.Fprintf(os.Stderr, "\r%s, %d streams, round %d/%d%20s", name, k, r, rounds, "")
				res, err := measureStreamsOnce(o, name, k)
				if err != nil {
					return fmt.Errorf("%s, %d streams: %w", name, k, err)
				}
				res.Round = r
				res.MBPerS = res.Throughput * float64(size) / 1e6
				results = append(results, res)
				if o.json {
					printJSON(res)
				}
			}
		}
	}
	fmt.Fprintf(os.Stderr, "\r%60s\r", "")
	if o.json {
		return nil
	}
	fmt.Printf("Machine: %s, %d cores, %s %s/%s. Streams on one connection, %d messages of %d bytes per measurement, each sent back",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, o.n, size)
	if o.compare {
		fmt.Printf(", %d alternating rounds, medians shown", o.rounds)
	}
	fmt.Println(".")
	fmt.Println()
	fmt.Println("| streams | system | messages/s (min–max) | vs tp | MB/s each way | messages/CPU-s | errors |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, k := range o.streams {
		var tpTput float64
		for _, name := range streamSystems {
			var rs []result // median and extent work on result: carry the fields over
			var errs int64
			for _, r := range results {
				if r.System == name && r.Streams == k {
					rs = append(rs, result{Throughput: r.Throughput, CPUCallsPerS: r.CPUPerS})
					errs += r.Errors
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
			fmt.Printf("| %d | %s | %.0f (%.0f–%.0f) | %s | %.1f | %.0f | %d |\n", k, name, tput, lo, hi, ratio,
				tput*float64(size)/1e6, median(rs, func(r result) float64 { return r.CPUCallsPerS }), errs)
		}
	}
	return nil
}

func measureStreamsOnce(o options, name string, k int) (streamResult, error) {
	sys, err := newSystem(name, o)
	if err != nil {
		return streamResult{}, err
	}
	st, ok := sys.(streamer)
	if !ok {
		return streamResult{}, fmt.Errorf("%s does not stream", name)
	}
	srv, err := startServer(name, o)
	if err != nil {
		return streamResult{}, err
	}
	defer srv.stop()
	run := func(n int) (int64, error) {
		streams, closeAll, err := st.openStreams(srv.addr, k)
		if err != nil {
			return 0, err
		}
		defer closeAll()
		return pump(streams, n), nil
	}
	if _, err := run(min(o.n/10, 20_000)); err != nil { // warm up
		return streamResult{}, err
	}
	cpu0, srv0 := selfCPU(), srv.cpu()
	start := time.Now()
	errs, err := run(o.n)
	if err != nil {
		return streamResult{}, err
	}
	wall := time.Since(start)
	cpu := selfCPU() - cpu0 + srv.cpu() - srv0
	res := streamResult{System: name, Streams: k, Messages: o.n, Errors: errs, Throughput: float64(o.n) / wall.Seconds()}
	if cpu > 0 {
		res.CPUPerS = float64(o.n) / cpu.Seconds()
	}
	return res, nil
}

// pump sends n messages over the streams, each its share, and reads back
// every reply; it returns the failures.
func pump(streams []benchStream, n int) int64 {
	var errs atomic.Int64
	var wg sync.WaitGroup
	for i, s := range streams {
		share := n / len(streams)
		if i < n%len(streams) {
			share++
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			req := benchpb.New()
			for range share {
				if s.send(req) != nil {
					errs.Add(1)
					return
				}
			}
			if s.closeSend() != nil {
				errs.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			resp := new(benchpb.BenchmarkMessage)
			for range share {
				resp.Reset()
				if err := s.recv(resp); err != nil || resp.GetField1() != "OK" {
					errs.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs.Load()
}

// ---- tp ----

// EchoStream is tp's stream handler.
func EchoStream(ctx tp.StreamCtx, s *tp.Stream) error {
	m := new(benchpb.BenchmarkMessage)
	for {
		m.Reset()
		if err := s.Recv(m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := s.Send(handle(m)); err != nil {
			return err
		}
	}
}

type tpStream struct{ *tp.Stream }

func (s tpStream) send(m *benchpb.BenchmarkMessage) error { return s.Send(m) }
func (s tpStream) recv(m *benchpb.BenchmarkMessage) error { return s.Recv(m) }
func (s tpStream) closeSend() error                       { return s.CloseSend() }

func (s *tpSystem) openStreams(addr string, k int) ([]benchStream, func(), error) {
	c, err := s.dial(addr, 1)
	if err != nil {
		return nil, nil, err
	}
	sess := c.(*tpClient).sessions[0]
	var streams []benchStream
	for range k {
		st, err := sess.OpenStream(context.Background(), "/echo_stream", s.settings...)
		if err != nil {
			c.close()
			return nil, nil, err
		}
		streams = append(streams, tpStream{st})
	}
	return streams, c.close, nil
}

// ---- gRPC bidi streaming ----

type grpcStream struct{ grpc.ClientStream }

func (s grpcStream) send(m *benchpb.BenchmarkMessage) error { return s.SendMsg(m) }
func (s grpcStream) recv(m *benchpb.BenchmarkMessage) error { return s.RecvMsg(m) }
func (s grpcStream) closeSend() error                       { return s.CloseSend() }

func grpcEchoStream(_ any, stream grpc.ServerStream) error {
	m := new(benchpb.BenchmarkMessage)
	for {
		m.Reset()
		if err := stream.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := stream.SendMsg(handle(m)); err != nil {
			return err
		}
	}
}

func (g gRPC) openStreams(addr string, k int) ([]benchStream, func(), error) {
	c, err := g.dial(addr, 1)
	if err != nil {
		return nil, nil, err
	}
	cc := c.(grpcClient)[0]
	ctx, cancel := context.WithCancel(context.Background())
	closeAll := func() { cancel(); c.close() }
	var streams []benchStream
	for range k {
		st, err := cc.NewStream(ctx, &grpcDesc.Streams[0], "/bench.Bench/EchoStream")
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		streams = append(streams, grpcStream{st})
	}
	return streams, closeAll, nil
}
