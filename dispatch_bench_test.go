package tp

import (
	"testing"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
)

type dispatchCtrl struct{ CallCtx }

func (*dispatchCtrl) Echo(arg *[]byte) ([]byte, *Status) { return *arg, nil }

func dispatchFunc(ctx CallCtx, arg *[]byte) ([]byte, *Status) { return *arg, nil }

// The pointer-result shapes, which the router calls without reflect.
func (*dispatchCtrl) EchoPtr(arg *[]byte) (*[]byte, *Status) { return arg, nil }

func dispatchPtr(ctx CallCtx, arg *[]byte) (*[]byte, *Status) { return arg, nil }

func dispatchTyped(ctx CallCtx, arg *[]byte) (*[]byte, error) { return arg, nil }

// BenchmarkDispatch is the router's share of serving a CALL: find the
// route, decode a 581-byte []byte argument (plain codec) and call the
// handler: a struct method and a function registered by reflection, and a
// function registered with HandleCall, which calls it directly.
func BenchmarkDispatch(b *testing.B) {
	p, err := NewPeer(PeerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	plain := Codecs(codec.PlainID)
	p.RouteCall(new(dispatchCtrl), plain)
	p.RouteCallFunc(dispatchFunc, plain)
	p.RouteCallFunc(dispatchPtr, plain)
	HandleCall(p.Router(), "/typed", dispatchTyped, plain)
	s := &Session{peer: p}
	for _, route := range []string{"/dispatch_ctrl/echo", "/dispatch_ctrl/echo_ptr", "/dispatch_func", "/dispatch_ptr", "/typed"} {
		b.Run(route, func(b *testing.B) {
			in := &socket.Message{Type: socket.TypeCall, ServiceMethod: route, BodyCodec: codec.PlainID, Payload: make([]byte, 581)}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c := newHandlerCtx(s, nil, in)
				c.output = in // only its Body is set
				if c.handler = p.router.table.lookup(true, in.ServiceMethod); c.handler == nil {
					b.Fatal("no route")
				}
				if st := c.invoke(); st != nil {
					b.Fatal(st)
				}
				c.input, c.output = nil, nil // not pooled messages: keep them
				c.release()
			}
		})
	}
}
