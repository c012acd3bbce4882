package codec

// PlainID is the wire id of the plain codec.
const PlainID = 's'

// Plain sends text and bytes as they are, with no encoding at all.
// It marshals string, []byte, *string and *[]byte, and unmarshals into
// *string and *[]byte. Unmarshaling into a *[]byte reuses its capacity.
type Plain struct{}

// ID returns 's'.
func (Plain) ID() byte { return PlainID }

// Name returns "plain".
func (Plain) Name() string { return "plain" }

// Marshal appends the bytes of v to dst. A nil pointer adds nothing.
func (Plain) Marshal(dst []byte, v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return append(dst, b...), nil
	case string:
		return append(dst, b...), nil
	case *[]byte:
		if b != nil {
			dst = append(dst, *b...)
		}
		return dst, nil
	case *string:
		if b != nil {
			dst = append(dst, *b...)
		}
		return dst, nil
	}
	return dst, unsupported("plain", "marshal", v, "string, []byte, *string or *[]byte")
}

// Unmarshal copies data into v.
func (Plain) Unmarshal(data []byte, v any) error {
	switch b := v.(type) {
	case *[]byte:
		if b != nil {
			*b = append((*b)[:0], data...)
			return nil
		}
	case *string:
		if b != nil {
			*b = string(data)
			return nil
		}
	}
	return unsupported("plain", "unmarshal", v, "a non-nil *string or *[]byte")
}
