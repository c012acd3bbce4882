package tp_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/seed-a9a850dd/tp"
)

// Arith serves /arith/mul.
type Arith struct{ tp.CallCtx }

// Mul multiplies the two numbers it is given.
func (a *Arith) Mul(arg *[2]int) (int, *tp.Status) { return arg[0] * arg[1], nil }

// A server and a client are the same type; once connected, the client
// calls the server.
func Example() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCall(new(Arith))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	var product int
	cmd := sess.Call(context.Background(), "/arith/mul", [2]int{6, 7}, &product)
	fmt.Println(product, cmd.Err())

	cmd = sess.Call(context.Background(), "/arith/div", [2]int{6, 7}, &product)
	fmt.Println(cmd.Status().Code(), "|", cmd.Err())
	// Output:
	// 42 <nil>
	// not found | no CALL handler for "/arith/div" (not found)
}

// A caller's deadline bounds the call, and travels to the handler.
func ExampleSession_Call_deadline() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCallFunc(Sleepy)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	st := sess.Call(ctx, "/sleepy", 200, nil).Status()
	fmt.Println(tp.CodeOf(st))
	// Output: timeout
}

// AsyncCall returns at once; the outcome arrives on the done channel.
func ExampleSession_AsyncCall() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.RouteCall(new(Arith))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, _ := cli.Dial(context.Background(), ln.Addr().String())

	done := make(chan *tp.CallCmd, 1)
	var product int
	sess.AsyncCall(context.Background(), "/arith/mul", [2]int{3, 5}, &product, done)
	cmd := <-done
	fmt.Println(cmd.ServiceMethod(), product, cmd.Err())
	// Output: /arith/mul 15 <nil>
}

// A server pushes to every session it holds; nothing is replied.
func ExamplePeer_Broadcast() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	cli.RoutePushFunc(Flash) // Flash sends what it gets on pushed
	cli.Dial(context.Background(), ln.Addr().String())
	for srv.CountSession() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := srv.Broadcast(context.Background(), "/flash", "hello, everyone", nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-pushed)
	// Output: hello, everyone
}

// HandleCall registers any function under a name of your choosing, its
// types checked by the compiler; a method value keeps its receiver, so
// the handler keeps state. tp.Call returns the typed result.
func ExampleHandleCall() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	hits := new(Counter) // Incr(ctx tp.CallCtx, n *int) (int, error) adds n
	tp.HandleCall(srv.Router(), "/hits/add", hits.Incr)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		total, err := tp.Call[int](context.Background(), sess, "/hits/add", 2)
		fmt.Println(total, err)
	}
	// Output:
	// 2 <nil>
	// 4 <nil>
	// 6 <nil>
}

// userKey names the value a session keeps for who it authenticated as.
var userKey = tp.NewKey[string]("user")

// A session keeps typed values for the application and plugins: here a
// hook notes who the session belongs to, and a handler reads it.
func ExampleNewKey() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet}, acceptHook(func(s *tp.Session) error {
		userKey.Set(s, "alice") // an auth plugin would check a credential first
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tp.HandleCall(srv.Router(), "/whoami", func(ctx tp.CallCtx, _ *struct{}) (string, error) {
		user, _ := userKey.Get(ctx.Session())
		return user, nil
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	sess, err := cli.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tp.Call[string](context.Background(), sess, "/whoami", nil))
	// Output: alice <nil>
}

// Upper sends back, in capitals, every line the other end streams to it,
// and a count as its trailer.
func Upper(ctx tp.StreamCtx, s *tp.Stream) error {
	n := 0
	for {
		var line string
		err := s.Recv(&line)
		if err == io.EOF { // the opener closed its side: done
			s.SetTrailer("lines", strconv.Itoa(n))
			return nil
		}
		if err != nil {
			return err
		}
		n++
		if err := s.Send(strings.ToUpper(line)); err != nil {
			return err
		}
	}
}

// A stream carries messages both ways beside the session's calls; here
// the server opens one to its client, which serves it.
func ExampleSession_OpenStream() {
	srv, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	cli, err := tp.NewPeer(tp.PeerConfig{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	cli.RouteStreamFunc(Upper) // serves /upper
	if _, err := cli.Dial(context.Background(), ln.Addr().String()); err != nil {
		log.Fatal(err)
	}

	for sess := range srv.Sessions() { // the server's end of that session
		s, err := sess.OpenStream(context.Background(), "/upper")
		if err != nil {
			log.Fatal(err)
		}
		for _, line := range []string{"either end", "may open a stream"} {
			s.Send(line)
		}
		s.CloseSend()
		for {
			var line string
			if err := s.Recv(&line); err != nil {
				fmt.Println(err, "after", s.Trailer().Get("lines"), "lines")
				break
			}
			fmt.Println(line)
		}
	}
	// Output:
	// EITHER END
	// MAY OPEN A STREAM
	// EOF after 2 lines
}
