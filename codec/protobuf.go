package codec

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// ProtobufID is the wire id of the protobuf codec.
const ProtobufID = 'p'

// Protobuf encodes bodies in the protobuf binary format. It takes messages
// generated for google.golang.org/protobuf and, through protoadapt, older
// github.com/golang/protobuf messages.
type Protobuf struct{}

// ID returns 'p'.
func (Protobuf) ID() byte { return ProtobufID }

// Name returns "protobuf".
func (Protobuf) Name() string { return "protobuf" }

const protobufWant = "a proto.Message (generated protobuf code)"

func asProto(v any) (proto.Message, bool) {
	switch m := v.(type) {
	case proto.Message:
		return m, true
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m), true
	}
	return nil, false
}

// Marshal appends the protobuf encoding of v to dst.
func (Protobuf) Marshal(dst []byte, v any) ([]byte, error) {
	m, ok := asProto(v)
	if !ok {
		return dst, unsupported("protobuf", "marshal", v, protobufWant)
	}
	out, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("codec protobuf: marshal %T: %w", v, err)
	}
	return out, nil
}

// Unmarshal decodes data into v, resetting it first.
func (Protobuf) Unmarshal(data []byte, v any) error {
	m, ok := asProto(v)
	if !ok {
		return unsupported("protobuf", "unmarshal", v, protobufWant)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("codec protobuf: unmarshal into %T: %w", v, err)
	}
	return nil
}
