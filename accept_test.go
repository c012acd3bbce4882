package tp_test

import (
	"context"
	"testing"

	"github.com/seed-a9a850dd/tp"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
)

type Total struct {
	Sum int `json:"sum" form:"sum"`
}

// A caller asks for its reply in another codec with AcceptCodecKey; an
// unknown codec name leaves the reply in the request's.
func TestAcceptCodec(t *testing.T) {
	_, _, sess := pair(t, tp.PeerConfig{}, tp.PeerConfig{}, func(srv *tp.Peer) {
		tp.HandleCall(srv.Router(), "/total", func(_ tp.CallCtx, n *[]int) (Total, error) { return Total{(*n)[0] + (*n)[1]}, nil })
	})
	for _, tt := range []struct {
		accept string
		codec  byte
		body   string
	}{
		{"form", codec.FormID, "sum=3"},
		{"", codec.JSONID, `{"sum":3}`},
		{"no-such-codec", codec.JSONID, `{"sum":3}`},
	} {
		var reply socket.RawBody
		var settings []tp.MessageSetting
		if tt.accept != "" {
			settings = append(settings, tp.WithSetMeta(tp.AcceptCodecKey, tt.accept))
		}
		if err := sess.Call(context.Background(), "/total", []int{1, 2}, &reply, settings...).Err(); err != nil {
			t.Fatal(err)
		}
		if reply.Codec != tt.codec || string(reply.Bytes) != tt.body {
			t.Errorf("Accept %q: codec %q body %q; want %q %q", tt.accept, reply.Codec, reply.Bytes, tt.codec, tt.body)
		}
	}
}
