package codec

import (
	"fmt"

	jsoniter "github.com/json-iterator/go"
)

// JSONID is the wire id of the JSON codec.
const JSONID = 'j'

// jsonAPI behaves like encoding/json: same tags, same escaping, sorted map keys.
var jsonAPI = jsoniter.ConfigCompatibleWithStandardLibrary

// JSON encodes bodies as JSON with json-iterator, honouring encoding/json
// struct tags. Any value encoding/json accepts is accepted.
type JSON struct{}

// ID returns 'j'.
func (JSON) ID() byte { return JSONID }

// Name returns "json".
func (JSON) Name() string { return "json" }

// Marshal appends the JSON encoding of v to dst.
func (JSON) Marshal(dst []byte, v any) ([]byte, error) {
	s := jsonAPI.BorrowStream(nil)
	defer jsonAPI.ReturnStream(s)
	s.WriteVal(v)
	if s.Error != nil {
		return dst, fmt.Errorf("codec json: marshal %T: %w", v, s.Error)
	}
	return append(dst, s.Buffer()...), nil
}

// Unmarshal decodes JSON data into v, which must be a non-nil pointer.
func (JSON) Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	if err := jsonAPI.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec json: unmarshal into %T: %w", v, err)
	}
	return nil
}
