// Package codec encodes and decodes message bodies.
//
// A Codec is known by a one-byte id, which travels on the wire, and by a
// name, which people use. The codecs of this package register themselves:
//
//	id   name      encodes
//	'j'  json      anything encoding/json can, with json-iterator
//	'p'  protobuf  proto.Message (APIv2, and APIv1 through protoadapt)
//	's'  plain     string, []byte, *string, *[]byte
//	'f'  form      url.Values, string-keyed maps, structs with form tags
//
// Register a codec of your own from an init function, like a database/sql
// driver. Lookups are lock-free and safe from any goroutine.
package codec

import (
	"fmt"
	"reflect"

	"github.com/seed-a9a850dd/tp/internal/registry"
)

// A Codec encodes bodies of one format. Implementations must be safe for
// concurrent use.
type Codec interface {
	// ID is the byte that names the codec on the wire.
	ID() byte
	// Name is the codec's name for people and configuration, such as "json".
	Name() string
	// Marshal appends the encoding of v to dst and returns the result.
	Marshal(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into v, which is usually a pointer. data is
	// only valid during the call: v must not keep it.
	Unmarshal(data []byte, v any) error
}

var codecs = registry.New[Codec]("codec")

// Register makes c available by its id and name. It panics if c is nil or
// its id or name is taken: two codecs claiming one id would misread each
// other's bodies.
func Register(c Codec) { codecs.Register(c) }

// ByID returns the codec registered under id.
func ByID(id byte) (Codec, error) { return codecs.ByID(id) }

// ByName returns the codec registered under name.
func ByName(name string) (Codec, error) { return codecs.ByName(name) }

// UnsupportedTypeError reports a value a codec cannot encode or decode.
type UnsupportedTypeError struct {
	Codec string       // the codec's name
	Op    string       // "marshal" or "unmarshal"
	Type  reflect.Type // the value's type; nil for a nil interface
	Want  string       // what the codec accepts
}

// Error says which codec could not handle which type, and what it takes.
func (e *UnsupportedTypeError) Error() string {
	t := "nil"
	if e.Type != nil {
		t = e.Type.String()
	}
	return fmt.Sprintf("codec %s: cannot %s %s: want %s", e.Codec, e.Op, t, e.Want)
}

func unsupported(codec, op string, v any, want string) error {
	return &UnsupportedTypeError{Codec: codec, Op: op, Type: reflect.TypeOf(v), Want: want}
}

func init() {
	Register(JSON{})
	Register(Protobuf{})
	Register(Plain{})
	Register(Form{})
}
