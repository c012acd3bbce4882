package tp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// echoStream sends back every message it receives, then a trailer.
func echoStream(ctx tp.StreamCtx, s *tp.Stream) error {
	n := 0
	for {
		var v string
		err := s.Recv(&v)
		if err == io.EOF {
			s.SetTrailer("count", fmt.Sprint(n))
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if err := s.Send(ctx.PeekMeta("prefix") + v); err != nil {
			return err
		}
	}
}

func TestStreamEcho(t *testing.T) {
	srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/echo", echoStream)
	})
	_ = srv
	ctx := context.Background()
	s, err := sess.OpenStream(ctx, "/echo", tp.WithSetMeta("prefix", "> "))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if err := s.Send(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		var v string
		if err := s.Recv(&v); err != nil || v != fmt.Sprint("> ", i) {
			t.Fatalf("message %d: %q %v", i, v, err)
		}
	}
	var v string
	if err := s.Recv(&v); err != io.EOF {
		t.Fatalf("after the last: %v", err)
	}
	if got := s.Trailer().Get("count"); got != "100" {
		t.Fatalf("trailer count %q", got)
	}
	if err := s.Send("late"); err != io.EOF {
		t.Fatalf("a send after the end: %v", err)
	}
	select {
	case <-s.Context().Done():
	case <-time.After(time.Second):
		t.Fatal("the stream's context did not end with it")
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

func TestStreamFromTheServer(t *testing.T) {
	srv, cli, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, nil)
	tp.HandleStream(cli.Router(), "/echo", echoStream)
	_ = sess
	var back *tp.Session
	for s := range srv.Sessions() {
		back = s
	}
	s, err := back.OpenStream(context.Background(), "/echo")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send("hi"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := s.Recv(&v); err != nil || v != "hi" {
		t.Fatalf("%q %v", v, err)
	}
	s.CloseSend()
	if err := s.Recv(&v); err != io.EOF {
		t.Fatal(err)
	}
}

func TestStreamRefusals(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/fail", func(ctx tp.StreamCtx, s *tp.Stream) error {
			return tp.NewStatus(tp.CodeInvalidArgument, "no thanks", nil)
		})
	})
	for _, tt := range []struct {
		method string
		want   tp.Code
	}{{"/nope", tp.CodeNotFound}, {"/fail", tp.CodeInvalidArgument}} {
		s, err := sess.OpenStream(context.Background(), tt.method)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		err = s.Recv(&v)
		if tp.CodeOf(err) != tt.want {
			t.Fatalf("%s: %v", tt.method, err)
		}
		if err := s.Send("x"); tp.CodeOf(err) != tt.want {
			t.Fatalf("%s: send: %v", tt.method, err)
		}
		if !errors.Is(context.Cause(s.Context()), s.Err()) {
			t.Fatalf("%s: the context's cause %v", tt.method, context.Cause(s.Context()))
		}
	}
}

// transports yields a connected session over each transport tp has, to a
// server set up by route.
func transports(t *testing.T, route func(*tp.Peer)) map[string]func(t *testing.T) (srv *tp.Peer, sess *tp.Session) {
	return map[string]func(t *testing.T) (*tp.Peer, *tp.Session){
		"tcp": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srv, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, route)
			return srv, sess
		},
		"tls": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srvTLS, cliTLS := selfSigned(t)
			srv, _, sess := pair(t, tp.PeerConfig{TLS: srvTLS}, tp.PeerConfig{TLS: cliTLS}, route)
			return srv, sess
		},
		"unix": func(t *testing.T) (*tp.Peer, *tp.Session) {
			srv := newPeer(t, tp.PeerConfig{Network: "unix"})
			route(srv)
			ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "tp.sock"))
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			return srv, dial(t, newPeer(t, tp.PeerConfig{Network: "unix"}), ln.Addr().String())
		},
		"pipe": func(t *testing.T) (*tp.Peer, *tp.Session) {
			a, b := net.Pipe()
			srv := newPeer(t, tp.PeerConfig{})
			route(srv)
			if _, err := srv.ServeConn(a); err != nil {
				t.Fatal(err)
			}
			sess, err := newPeer(t, tp.PeerConfig{}).ServeConn(b)
			if err != nil {
				t.Fatal(err)
			}
			return srv, sess
		},
	}
}

// checkEcho runs one stream of n messages through /echo, each naming the
// stream, and checks every one comes back, in order.
func checkEcho(ctx context.Context, sess *tp.Session, name string, n int) error {
	s, err := sess.OpenStream(ctx, "/echo")
	if err != nil {
		return err
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.Send(fmt.Sprintf("%s #%d", name, i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- s.CloseSend()
	}()
	for i := range n {
		var v string
		if err := s.Recv(&v); err != nil {
			return fmt.Errorf("%s: message %d: %w", name, i, err)
		}
		if want := fmt.Sprintf("%s #%d", name, i); v != want {
			return fmt.Errorf("%s: got %q, want %q", name, v, want)
		}
	}
	if err := s.Recv(new(string)); err != io.EOF {
		return fmt.Errorf("%s: after the last: %v", name, err)
	}
	return <-errc
}

func TestStreamTransports(t *testing.T) {
	for name, connect := range transports(t, func(srv *tp.Peer) { tp.HandleStream(srv.Router(), "/echo", echoStream) }) {
		t.Run(name, func(t *testing.T) {
			_, sess := connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 10)
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := checkEcho(ctx, sess, fmt.Sprint("stream ", i), 200); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// 1,000 streams each way at once on one session, each with its own data,
// and calls beside them.
func TestThousandStreamsBothWays(t *testing.T) {
	srv, cli, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleStream(srv.Router(), "/echo", echoStream)
		srv.RouteCallFunc(Ping)
	})
	tp.HandleStream(cli.Router(), "/echo", echoStream)
	var back *tp.Session
	for s := range srv.Sessions() {
		back = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 20
	if raceEnabled {
		n = 5
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for i := range 1000 {
		for _, side := range []struct {
			name string
			sess *tp.Session
		}{{"client", sess}, {"server", back}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := checkEcho(ctx, side.sess, fmt.Sprintf("%s stream %d", side.name, i), n); err != nil {
					errs <- err
				}
			}()
		}
	}
	var x int
	if err := sess.Call(ctx, "/ping", 1, &x).Err(); err != nil || x != 2 {
		t.Fatalf("a call beside the streams: %d %v", x, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
