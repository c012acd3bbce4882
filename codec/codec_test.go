package codec_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"google.golang.org/protobuf/proto"
)

type point struct {
	X    int      `json:"x" form:"x"`
	Y    float64  `json:"y,omitempty" form:"y"`
	Name string   `json:"name" form:"n"`
	Tags []string `json:"tags" form:"tag"`
	OK   bool     `form:"ok"`
	Skip string   `json:"-" form:"-"`
	U    uint8
}

func TestRoundTrip(t *testing.T) {
	str, bs := "hello", []byte{0, 1, 2}
	tests := []struct {
		codec string
		in    any
		out   func() any // a pointer to decode into
		want  any        // what out points to afterwards
	}{
		{"json", point{X: 1, Y: 2.5, Name: "<a&b>", Tags: []string{"p", "q"}}, func() any { return new(point) },
			point{X: 1, Y: 2.5, Name: "<a&b>", Tags: []string{"p", "q"}}},
		{"json", []int{1, 2, 3}, func() any { return new([]int) }, []int{1, 2, 3}},
		{"json", map[string]any{"a": "b"}, func() any { return new(map[string]any) }, map[string]any{"a": "b"}},
		{"protobuf", benchpb.New(), func() any { return new(benchpb.BenchmarkMessage) }, benchpb.New()},
		{"plain", "text", func() any { return new(string) }, "text"},
		{"plain", []byte("bytes"), func() any { return new([]byte) }, []byte("bytes")},
		{"plain", &str, func() any { return new(string) }, "hello"},
		{"plain", &bs, func() any { return new([]byte) }, []byte{0, 1, 2}},
		{"plain", "", func() any { return new(string) }, ""},
		{"form", url.Values{"a": {"1", "2"}, "b": {"x y"}}, func() any { return new(url.Values) }, url.Values{"a": {"1", "2"}, "b": {"x y"}}},
		{"form", map[string]string{"k": "v&w", "e": ""}, func() any { return new(map[string]string) }, map[string]string{"k": "v&w", "e": ""}},
		{"form", map[string][]string{"k": {"1"}}, func() any { return new(map[string][]string) }, map[string][]string{"k": {"1"}}},
		{"form", &point{X: -3, Y: 0.5, Name: "n", Tags: []string{"a", "b"}, OK: true, Skip: "gone", U: 7}, func() any { return new(point) },
			point{X: -3, Y: 0.5, Name: "n", Tags: []string{"a", "b"}, OK: true, U: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			c, err := codec.ByName(tt.codec)
			if err != nil {
				t.Fatal(err)
			}
			if byID, _ := codec.ByID(c.ID()); byID != c {
				t.Fatal("ByID and ByName disagree")
			}
			prefix := []byte("prefix")
			data, err := c.Marshal(prefix, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), "prefix") {
				t.Fatal("Marshal did not append to dst")
			}
			out := tt.out()
			if err := c.Unmarshal(data[len(prefix):], out); err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(out).Elem().Interface()
			if m, ok := tt.want.(proto.Message); ok {
				if !proto.Equal(m, out.(proto.Message)) {
					t.Fatalf("got %v, want %v", out, m)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestJSONMatchesEncodingJSON(t *testing.T) {
	c, _ := codec.ByName("json")
	data, err := c.Marshal(nil, point{X: 1, Name: "<a&b>", Skip: "hidden"})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"x":1,"name":"\u003ca\u0026b\u003e","tags":null,"OK":false,"U":0}`
	if string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
}

func TestUnsupportedTypes(t *testing.T) {
	tests := []struct {
		codec, op string
		v         any
		want      string
	}{
		{"plain", "marshal", 42, "codec plain: cannot marshal int"},
		{"plain", "unmarshal", new(int), "codec plain: cannot unmarshal *int"},
		{"plain", "unmarshal", (*string)(nil), "codec plain: cannot unmarshal *string"},
		{"protobuf", "marshal", "text", "codec protobuf: cannot marshal string"},
		{"protobuf", "unmarshal", new(int), "codec protobuf: cannot unmarshal *int"},
		{"form", "marshal", 3.5, "codec form: cannot marshal float64"},
		{"form", "unmarshal", point{}, "codec form: cannot unmarshal codec_test.point"},
	}
	for _, tt := range tests {
		t.Run(tt.codec+" "+tt.op, func(t *testing.T) {
			c, _ := codec.ByName(tt.codec)
			var err error
			if tt.op == "marshal" {
				_, err = c.Marshal(nil, tt.v)
			} else {
				err = c.Unmarshal([]byte("x=1"), tt.v)
			}
			var ute *codec.UnsupportedTypeError
			if !errors.As(err, &ute) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v, want an UnsupportedTypeError starting %q", err, tt.want)
			}
		})
	}
	type bad struct{ M map[string]int }
	c, _ := codec.ByName("form")
	if _, err := c.Marshal(nil, bad{}); err == nil || !strings.Contains(err.Error(), "bad.M") {
		t.Fatalf("form with a map field: %v, want an error naming the field", err)
	}
	if _, err := codec.ByName("xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := codec.ByID('Z'); err == nil {
		t.Fatal("unknown id found")
	}
}

type fake struct {
	id   byte
	name string
}

func (f fake) ID() byte                                { return f.id }
func (f fake) Name() string                            { return f.name }
func (fake) Marshal(dst []byte, _ any) ([]byte, error) { return dst, nil }
func (fake) Unmarshal([]byte, any) error               { return nil }

// registerFakeY registers once: the registry is global, and -count may run
// TestRegister again in the same process.
var registerFakeY = sync.OnceFunc(func() { codec.Register(fake{'Y', "fake-y"}) })

func TestRegister(t *testing.T) {
	registerFakeY()
	if c, err := codec.ByName("fake-y"); err != nil || c.ID() != 'Y' {
		t.Fatalf("registered codec not found: %v", err)
	}
	for _, c := range []codec.Codec{nil, fake{'j', "other"}, fake{'W', "json"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%v) did not panic", c)
				}
			}()
			codec.Register(c)
		}()
	}
}

// Every codec reports a body that does not decode, rather than leaving
// the value half-filled and saying nothing.
func TestUnmarshalErrors(t *testing.T) {
	type xy struct{ X, Y int }
	tests := []struct {
		codec string
		data  string
		v     any
	}{
		{"json", `{"X":`, new(xy)},
		{"json", `{"X":"one"}`, new(xy)},
		{"json", `[1,2`, new([]int)},
		{"json", `"text"`, new(int)},
		{"json", `{} trailing`, new(xy)},
		{"protobuf", "\xff\xff\xff", new(benchpb.BenchmarkMessage)},
		{"form", "%zz=1", new(url.Values)},
	}
	for _, tt := range tests {
		t.Run(tt.codec+" "+tt.data, func(t *testing.T) {
			c, err := codec.ByName(tt.codec)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Unmarshal([]byte(tt.data), tt.v); err == nil {
				t.Fatalf("%s decoded %q into %T without an error", tt.codec, tt.data, tt.v)
			}
		})
	}
}

// A field JSON leaves out is out of reach of the form codec too: a caller
// cannot set it by choosing another codec.
func TestFormHonoursJSONExclusion(t *testing.T) {
	type account struct {
		Name    string
		IsAdmin bool `json:"-"`
	}
	c, _ := codec.ByName("form")
	var a account
	if err := c.Unmarshal([]byte("Name=eve&IsAdmin=true"), &a); err != nil {
		t.Fatal(err)
	}
	if a.IsAdmin || a.Name != "eve" {
		t.Fatalf("the form codec filled a field JSON excludes: %+v", a)
	}
	out, err := c.Marshal(nil, account{Name: "bob", IsAdmin: true})
	if err != nil || strings.Contains(string(out), "IsAdmin") {
		t.Fatalf("the form codec wrote a field JSON excludes: %q, %v", out, err)
	}
}
