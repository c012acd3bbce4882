package codec_test

import (
	"net/url"
	"testing"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"google.golang.org/protobuf/proto"
)

// Each decoder must reject malformed input with an error, never a panic,
// and what it accepts must encode and decode to the same value.

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"x":1,"name":"a","tags":["b"]}`, `[]`, `null`, `{"y":1e400}`, `"\ud800"`, `{`} {
		f.Add([]byte(s))
	}
	c := codec.JSON{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p point
		if c.Unmarshal(data, &p) != nil {
			return
		}
		out, err := c.Marshal(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		var again point
		if err := c.Unmarshal(out, &again); err != nil {
			t.Fatalf("cannot decode its own output %s: %v", out, err)
		}
	})
}

func FuzzForm(f *testing.F) {
	for _, s := range []string{"x=1&n=a&tag=b&tag=c&ok=true&U=3", "y=%zz", "x=99999999999999999999", "a;b", ""} {
		f.Add([]byte(s))
	}
	c := codec.Form{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p point
		if c.Unmarshal(data, &p) == nil {
			out, err := c.Marshal(nil, &p)
			if err != nil {
				t.Fatal(err)
			}
			var again point
			if err := c.Unmarshal(out, &again); err != nil {
				t.Fatalf("cannot decode its own output %s: %v", out, err)
			}
		}
		var v url.Values
		if c.Unmarshal(data, &v) == nil {
			out, _ := c.Marshal(nil, v)
			var again url.Values
			if err := c.Unmarshal(out, &again); err != nil {
				t.Fatalf("cannot decode its own output %s: %v", out, err)
			}
		}
	})
}

func FuzzProtobuf(f *testing.F) {
	seed, _ := proto.Marshal(benchpb.New())
	f.Add(seed)
	f.Add([]byte{0x0a, 0xff})
	c := codec.Protobuf{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m benchpb.BenchmarkMessage
		if c.Unmarshal(data, &m) != nil {
			return
		}
		out, err := c.Marshal(nil, &m)
		if err != nil {
			return // proto2 required fields may be missing
		}
		var again benchpb.BenchmarkMessage
		if err := c.Unmarshal(out, &again); err != nil || !proto.Equal(&m, &again) {
			t.Fatalf("round trip changed the message: %v", err)
		}
	})
}
