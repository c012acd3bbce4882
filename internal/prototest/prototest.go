// Package prototest holds the conformance tests every proto must pass:
// each field round-trips, over net.Pipe and TCP loopback, from empty to
// maximal values, and a fuzz body for Unpack.
package prototest

import (
	"bytes"
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/internal/testnet"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
	xgzip "github.com/seed-a9a850dd/tp/xfer/gzip"
	xmd5 "github.com/seed-a9a850dd/tp/xfer/md5"
)

// Case is one message to round-trip.
type Case struct {
	Name string
	Msg  func() *socket.Message
}

func meta(kv ...string) socket.Meta {
	var m socket.Meta
	for i := 0; i < len(kv); i += 2 {
		m.Add(kv[i], kv[i+1])
	}
	return m
}

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// Cases returns messages that together exercise every field of a Message.
func Cases() []Case {
	cs := []Case{
		{"empty", func() *socket.Message { return &socket.Message{Type: socket.TypeCall} }},
		{"maximal", func() *socket.Message {
			return &socket.Message{
				Seq: math.MaxUint32, Type: socket.TypePush,
				ServiceMethod: "/" + strings.Repeat("m", 70_000),
				Status:        status.New(math.MaxInt32, strings.Repeat("x", 1000), errString("the cause")),
				Meta:          meta("k", "v1", "k", "v2", "", "", strings.Repeat("K", 300), strings.Repeat("V", 70_000)),
				BodyCodec:     255,
				XferPipe:      []byte{xgzip.ID, xmd5.ID},
				Deadline:      time.Now().Add(365 * 24 * time.Hour),
				Payload:       body(100_000),
			}
		}},
		{"status negative code, no cause", func() *socket.Message {
			return &socket.Message{Type: socket.TypeReply, Seq: 9, Status: status.New(math.MinInt32, "below", nil)}
		}},
		{"status code only", func() *socket.Message {
			return &socket.Message{Type: socket.TypeReply, Seq: 10, Status: status.New(status.NotFound, "", nil)}
		}},
		{"non-UTF-8 text", func() *socket.Message {
			return &socket.Message{
				Type: socket.TypeCall, ServiceMethod: "/a\xff\xfe",
				Status: status.New(3, "m\xc3", errString("c\xff")),
				Meta:   meta("k\xff", "v\x00\xfe", "plain", "text"),
			}
		}},
		{"expired deadline", func() *socket.Message {
			return &socket.Message{Type: socket.TypeCall, Seq: 1, Deadline: time.Now().Add(-time.Hour)}
		}},
		{"json body value", func() *socket.Message {
			return &socket.Message{Type: socket.TypeCall, Seq: 2, ServiceMethod: "/math/add", BodyCodec: codec.JSONID,
				Body: map[string]any{"a": []int{1, 2, 3}, "b": "<&>"}}
		}},
		{"protobuf body value", func() *socket.Message {
			return &socket.Message{Type: socket.TypeCall, Seq: 3, BodyCodec: codec.ProtobufID, Body: benchpb.New()}
		}},
		{"md5 filter", func() *socket.Message {
			return &socket.Message{Type: socket.TypePush, XferPipe: []byte{xmd5.ID}, BodyCodec: codec.PlainID, Body: "hello"}
		}},
	}
	for _, n := range []int{0, 1, 1 << 10, 1 << 20, 8 << 20} {
		n := n
		cs = append(cs, Case{"body " + byteSize(n), func() *socket.Message {
			return &socket.Message{Type: socket.TypeCall, Seq: uint32(n), BodyCodec: codec.PlainID, Payload: body(n)}
		}})
	}
	return cs
}

type errString string

func (e errString) Error() string { return string(e) }

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// Equal reports how got differs from want, the message that was sent, or
// "" when it arrived whole. wantBody is want's encoded body.
func Equal(want, got *socket.Message, wantBody []byte) string {
	var diffs []string
	add := func(field string, ok bool) {
		if !ok {
			diffs = append(diffs, field)
		}
	}
	add("Type", want.Type == got.Type)
	add("Seq", want.Seq == got.Seq)
	add("ServiceMethod", want.ServiceMethod == got.ServiceMethod)
	add("BodyCodec", want.BodyCodec == got.BodyCodec)
	add("XferPipe", bytes.Equal(want.XferPipe, got.XferPipe))
	add("Status.Code", want.Status.Code() == got.Status.Code())
	add("Status.Msg", want.Status.Msg() == got.Status.Msg())
	add("Status.Cause", want.Status.CauseText() == got.Status.CauseText())
	add("Meta", metaPairs(&want.Meta) == metaPairs(&got.Meta))
	add("Payload", bytes.Equal(wantBody, got.Payload))
	if want.Deadline.IsZero() {
		add("Deadline (want none)", got.Deadline.IsZero())
	} else {
		// The deadline travels as time left: it may move by the transit time,
		// and an expired one arrives as about now.
		w := want.Deadline
		if now := time.Now(); w.Before(now) {
			w = now
		}
		d := got.Deadline.Sub(w)
		add("Deadline", !got.Deadline.IsZero() && d > -5*time.Second && d < 5*time.Second)
	}
	return strings.Join(diffs, ", ")
}

func metaPairs(m *socket.Meta) string {
	var sb strings.Builder
	m.Range(func(k, v string) bool {
		sb.WriteString(k)
		sb.WriteByte(0)
		sb.WriteString(v)
		sb.WriteByte(1)
		return true
	})
	return sb.String()
}

// Run round-trips every case through newProto over net.Pipe and over TCP
// on 127.0.0.1.
func Run(t *testing.T, newProto socket.ProtoFunc) {
	t.Run("pipe", func(t *testing.T) {
		a, b := net.Pipe()
		roundTrip(t, newProto, a, b)
	})
	t.Run("tcp", func(t *testing.T) {
		a, b := testnet.Pair(t)
		roundTrip(t, newProto, a, b)
	})
}

func roundTrip(t *testing.T, newProto socket.ProtoFunc, a, b net.Conn) {
	t.Helper()
	cfg := socket.Config{ReadLimit: 16 << 20}
	wr, err := socket.New(a, newProto, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := socket.New(b, newProto, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	cases := Cases()
	errc := make(chan error, 1)
	go func() {
		defer wr.Close()
		for _, c := range cases {
			if err := wr.WriteMessage(context.Background(), c.Msg()); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for _, c := range cases {
		want := c.Msg()
		wantBody, err := want.MarshalBody(nil)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		got := socket.AcquireMessage()
		if err := rd.ReadMessage(got); err != nil {
			t.Fatalf("%s: read: %v", c.Name, err)
		}
		if d := Equal(want, got, wantBody); d != "" {
			t.Errorf("%s: these fields changed on the way: %s", c.Name, d)
		}
		if got.Size <= 0 {
			t.Errorf("%s: Size = %d, want the frame's size", c.Name, got.Size)
		}
		socket.ReleaseMessage(got)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Seeds returns packed frames of every case small enough to seed a fuzzer.
func Seeds(newProto socket.ProtoFunc) [][]byte {
	p := newProto()
	var out [][]byte
	for _, c := range Cases() {
		b, err := socket.Pack(p, nil, c.Msg())
		if err == nil && len(b) <= 64<<10 {
			out = append(out, b)
		}
	}
	return out
}

// FuzzLimit is the read limit fuzz targets unpack with.
const FuzzLimit = 1 << 20

// Unpack is the body of a proto's fuzz target: it must not panic on any
// input, and what it accepts must pack and unpack to the same message.
func Unpack(t *testing.T, newProto socket.ProtoFunc, data []byte) {
	p := newProto()
	m := socket.AcquireMessage()
	defer socket.ReleaseMessage(m)
	if err := socket.Unpack(p, data, m, FuzzLimit); err != nil {
		return
	}
	if !m.Type.Valid() {
		return // the socket refuses it after Unpack
	}
	m.Deadline = time.Time{} // time left moves on; compared elsewhere
	packed, err := socket.Pack(p, nil, m)
	if err != nil {
		t.Fatalf("accepted a frame it cannot pack again: %v", err)
	}
	again := socket.AcquireMessage()
	defer socket.ReleaseMessage(again)
	if err := socket.Unpack(p, packed, again, 1<<30); err != nil {
		t.Fatalf("cannot unpack its own frame: %v", err)
	}
	if d := Equal(m, again, m.Payload); d != "" {
		t.Fatalf("fields changed on a second round trip: %s", d)
	}
}
