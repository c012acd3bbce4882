package socket_test

import (
	"context"
	"fmt"
	"net"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
)

// Two sockets exchange one message over an in-memory connection; a TCP
// connection works the same way.
func ExampleSocket() {
	a, b := net.Pipe()
	client, _ := socket.New(a, rawproto.New(), socket.Config{})
	server, _ := socket.New(b, rawproto.New(), socket.Config{})
	defer client.Close()
	defer server.Close()

	go func() {
		m := &socket.Message{
			Type: socket.TypeCall, Seq: 1, ServiceMethod: "/math/add",
			BodyCodec: codec.JSONID, Body: []int{1, 2, 3},
			XferPipe: []byte{gzip.ID},
		}
		m.Meta.Add("trace", "abc")
		client.WriteMessage(context.Background(), m)
	}()

	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := server.ReadMessage(m); err != nil {
		fmt.Println(err)
		return
	}
	var nums []int
	m.UnmarshalBody(&nums)
	fmt.Println(m.Type, m.Seq, m.ServiceMethod, m.Meta.Get("trace"), nums)
	// Output: CALL 1 /math/add abc [1 2 3]
}
