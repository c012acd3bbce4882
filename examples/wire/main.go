// Command wire sends messages between two tp sockets over TCP loopback,
// using the wire layer directly: a proto, a body codec and a gzip filter.
// Run it with: go run ./examples/wire
package main

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
)

type greeting struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	done := make(chan error, 1)
	go func() { done <- serve(ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	s, err := socket.New(conn, rawproto.New(), socket.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	call := &socket.Message{
		Type: socket.TypeCall, Seq: 1, ServiceMethod: "/greet",
		BodyCodec: codec.JSONID, Body: greeting{To: "world", Text: "hello"},
		XferPipe: []byte{gzip.ID},
	}
	call.Meta.Add("lang", "en")
	if err := s.WriteMessage(context.Background(), call); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sent %s %s seq=%d, %d bytes\n", call.Type, call.ServiceMethod, call.Seq, call.Size)

	reply := socket.AcquireMessage()
	defer socket.ReleaseMessage(reply)
	if err := s.ReadMessage(reply); err != nil {
		log.Fatal(err)
	}
	var text string
	if err := reply.UnmarshalBody(&text); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("got %s seq=%d: %q\n", reply.Type, reply.Seq, text)
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}

// serve answers one CALL on the first connection.
func serve(ln net.Listener) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	s, err := socket.New(conn, rawproto.New(), socket.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := s.ReadMessage(m); err != nil {
		return err
	}
	var g greeting
	if err := m.UnmarshalBody(&g); err != nil {
		return err
	}
	return s.WriteMessage(context.Background(), &socket.Message{
		Type: socket.TypeReply, Seq: m.Seq, BodyCodec: codec.PlainID,
		Body: fmt.Sprintf("%s, %s (lang %s)", g.Text, g.To, m.Meta.Get("lang")),
	})
}
