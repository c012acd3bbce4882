// Command browser serves a page that is a tp peer: a live counter the
// server pushes to every open page, a button that calls the server, and
// handlers the server calls in the page. The page loads the JavaScript
// client from js/src over WebSocket (transport/websocket).
//
//	go run ./examples/browser                 # then open the URL it prints
//	go run ./examples/browser -addr 127.0.0.1:0 -js path/to/js/src
//
// It also serves the routes the JavaScript client's tests call (js/test),
// so the same program is the Go peer of those tests.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cws "github.com/coder/websocket"
	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/transport/websocket"
	_ "github.com/seed-a9a850dd/tp/xfer/gzip"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

//go:embed static
var static embed.FS

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "the address to serve on")
	jsDir := flag.String("js", "", "the JavaScript client's directory (with src/, and dist/ once built); empty looks for js/ here and up")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*addr, *jsDir); err != nil {
		log.Fatal(err)
	}
}

func findJS(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	for _, d := range []string{"js", "../js", "../../js"} {
		if _, err := os.Stat(d + "/src/tp.js"); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no js/src/tp.js here or above: pass -js")
}

func run(addr, jsDir string) error {
	jsDir, err := findJS(jsDir)
	if err != nil {
		return err
	}
	peer, err := tp.NewPeer(tp.PeerConfig{ShutdownTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer peer.Close()
	s := &server{peer: peer}
	s.routes()

	mux := http.NewServeMux()
	mux.Handle("/tp", websocket.Handler(peer, websocket.Options{}))
	mux.HandleFunc("/badws", badWebSocket)
	mux.Handle("/js/", http.StripPrefix("/js/", http.FileServer(http.Dir(jsDir))))
	page, _ := fs.Sub(static, "static")
	mux.Handle("/", http.FileServer(http.FS(page)))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	fmt.Printf("LISTEN %s\nopen http://%s/ in a browser\n", ln.Addr(), ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	peer.Close() // tells the pages it is shutting down: they move on
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return hs.Shutdown(ctx)
}

// server holds the page's counter and what the tests look at.
type server struct {
	peer    *tp.Peer
	counter atomic.Int64

	mu         sync.Mutex
	lastCancel string // why /slow's context ended
}

func (s *server) routes() {
	r := s.peer.Router()
	// The example page.
	tp.HandleCall(r, "/counter/incr", func(ctx tp.CallCtx, by *int) (int64, error) {
		n := s.counter.Add(int64(*by))
		s.peer.Broadcast(context.Background(), "/ui/tick", n, nil) // every open page
		return n, nil
	})
	tp.HandleCall(r, "/counter/get", func(tp.CallCtx, *struct{}) (int64, error) { return s.counter.Load(), nil })

	// What the JavaScript client's tests call.
	tp.HandleCall(r, "/math/add", func(_ tp.CallCtx, n *[]float64) (float64, error) {
		if len(*n) != 2 {
			return 0, tp.NewStatus(tp.CodeInvalidArgument, "add takes two numbers", nil)
		}
		return (*n)[0] + (*n)[1], nil
	})
	tp.HandleCall(r, "/echo", func(_ tp.CallCtx, v *any) (any, error) { return *v, nil })
	tp.HandleCall(r, "/text", func(_ tp.CallCtx, v *string) (string, error) { return strings.ToUpper(*v), nil }, tp.Codecs('j', 's'))
	tp.HandleCall(r, "/meta", func(ctx tp.CallCtx, _ *struct{}) (string, error) {
		ctx.SetMeta("X-Served", "go")
		_, hasDeadline := ctx.Context().Deadline()
		return fmt.Sprintf("%s|%v", ctx.PeekMeta("X-Page"), hasDeadline), nil
	})
	tp.HandleCall(r, "/slow", func(ctx tp.CallCtx, ms *int) (string, error) {
		select {
		case <-time.After(time.Duration(*ms) * time.Millisecond):
			return "done", nil
		case <-ctx.Context().Done():
			s.mu.Lock()
			s.lastCancel = context.Cause(ctx.Context()).Error()
			s.mu.Unlock()
			return "", ctx.Context().Err()
		}
	})
	tp.HandleCall(r, "/last_cancel", func(tp.CallCtx, *struct{}) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.lastCancel, nil
	})
	tp.HandleCall(r, "/fail", func(tp.CallCtx, *struct{}) (int, error) {
		return 0, tp.NewStatus(418, "I'm a teapot", nil)
	})
	tp.HandleCall(r, "/pb/upper", func(_ tp.CallCtx, v *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String(strings.ToUpper(v.GetValue())), nil
	}, tp.Codecs('p'))
	tp.HandleCall(r, "/big", func(_ tp.CallCtx, n *int) (string, error) { return strings.Repeat("x", *n), nil })
	// The server calls into the page and pushes to it.
	tp.HandleCall(r, "/ask_page", func(ctx tp.CallCtx, q *[]float64) (string, error) {
		if err := ctx.Session().Push(ctx.Context(), "/ui/notify", "hello from go"); err != nil {
			return "", err
		}
		var sum float64
		if err := ctx.Session().Call(ctx.Context(), "/ui/add", *q, &sum).Err(); err != nil {
			return "", err
		}
		var missing string
		err := ctx.Session().Call(ctx.Context(), "/ui/missing", nil, &missing).Err()
		return fmt.Sprintf("sum=%v missing=%v", sum, tp.CodeOf(err)), nil
	})
	// Streams.
	tp.HandleStream(r, "/stream/echo", func(_ tp.StreamCtx, st *tp.Stream) error {
		n := 0
		for {
			var v any
			if err := st.Recv(&v); err != nil {
				st.SetTrailer("X-Count", fmt.Sprint(n))
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			n++
			if err := st.Send(v); err != nil {
				return err
			}
		}
	})
	tp.HandleStream(r, "/stream/count", func(_ tp.StreamCtx, st *tp.Stream) error {
		var n int
		if err := st.Recv(&n); err != nil {
			return err
		}
		chunk := strings.Repeat("y", 1000)
		for i := range n {
			if err := st.Send(fmt.Sprintf("%d:%s", i, chunk)); err != nil {
				return err
			}
		}
		return nil
	})
	tp.HandleCall(r, "/open_page_stream", func(ctx tp.CallCtx, words *[]string) ([]string, error) {
		st, err := ctx.Session().OpenStream(ctx.Context(), "/page/upper")
		if err != nil {
			return nil, err
		}
		defer st.Close()
		var out []string
		for _, w := range *words {
			if err := st.Send(w); err != nil {
				return nil, err
			}
			var got string
			if err := st.Recv(&got); err != nil {
				return nil, err
			}
			out = append(out, got)
		}
		st.CloseSend()
		return out, nil
	})
}

// badWebSocket speaks WebSocket with subprotocol tp, then sends what no tp
// peer sends: the client must close with a clear error and stay up.
func badWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := cws.Accept(w, r, &cws.AcceptOptions{Subprotocols: []string{"tp"}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	switch r.URL.Query().Get("kind") {
	case "text":
		c.Write(ctx, cws.MessageText, []byte("hello"))
	case "huge":
		c.Write(ctx, cws.MessageBinary, []byte{0x7f, 0xff, 0xff, 0xff, 1, 0}) // a 2 GiB frame announced
	default: // a frame whose header lies about a field's length
		c.Write(ctx, cws.MessageBinary, []byte{0, 0, 0, 12, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0x7f, 'a', 'b'})
	}
	c.Read(ctx) // until the client closes
}
