// Package jsonproto is a proto whose frames can be read in a packet
// capture: the message is a JSON object inside tp's envelope.
//
// A frame is socket's envelope (see socket.Pack) with version byte 2, whose
// inner part, before any xfer filter, is one JSON object:
//
//	{"type":1,"seq":7,"method":"/math/add","codec":106,"timeout_us":500000,
//	 "status":{"code":6,"msg":"...","cause":"..."},
//	 "meta":[["k","v"],["k","w"]],
//	 "body":[1,2,3]}
//
// Empty fields are left out. A body in the JSON codec is embedded as it is
// under "body"; any other body is base64 under "body64". Strings that are
// not valid UTF-8 (in the method, meta or status) travel as base64 in
// "method64", "meta64" and the status's "msg64"/"cause64" fields so that
// every message round-trips byte for byte.
package jsonproto

import (
	"fmt"
	"time"
	"unicode/utf8"

	jsoniter "github.com/json-iterator/go"
	"github.com/seed-a9a850dd/tp/codec"
	"github.com/seed-a9a850dd/tp/socket"
	"github.com/seed-a9a850dd/tp/status"
)

// Version is the frame's version byte.
const Version = 2

// New returns the ProtoFunc of jsonproto.
func New() socket.ProtoFunc {
	return func() socket.Proto { return jsonProto{} }
}

type jsonProto struct{}

var api = jsoniter.Config{EscapeHTML: false}.Froze()

type frame struct {
	Type      uint8               `json:"type"`
	Seq       uint32              `json:"seq"`
	Method    string              `json:"method,omitempty"`
	Method64  []byte              `json:"method64,omitempty"`
	Codec     uint8               `json:"codec,omitempty"`
	TimeoutUS uint64              `json:"timeout_us,omitempty"`
	Status    *frameStatus        `json:"status,omitempty"`
	Meta      [][2]string         `json:"meta,omitempty"`
	Meta64    [][2][]byte         `json:"meta64,omitempty"`
	Body      jsoniter.RawMessage `json:"body,omitempty"`
	Body64    []byte              `json:"body64,omitempty"`
}

type frameStatus struct {
	Code    int32  `json:"code"`
	Msg     string `json:"msg,omitempty"`
	Msg64   []byte `json:"msg64,omitempty"`
	Cause   string `json:"cause,omitempty"`
	Cause64 []byte `json:"cause64,omitempty"`
}

func (jsonProto) Version() (byte, string) { return Version, "json" }

// text puts s in the plain field when it is valid UTF-8, else in the
// base64 one, since JSON strings cannot carry arbitrary bytes.
func text(s string, plain *string, b64 *[]byte) {
	if utf8.ValidString(s) {
		*plain = s
	} else {
		*b64 = []byte(s)
	}
}

// Encode appends the header and body as one JSON object.
func (jsonProto) Encode(dst []byte, m *socket.Message) ([]byte, error) {
	f := frame{Type: uint8(m.Type), Seq: m.Seq, Codec: m.BodyCodec}
	text(m.ServiceMethod, &f.Method, &f.Method64)
	if !m.Deadline.IsZero() {
		f.TimeoutUS = uint64(max(time.Until(m.Deadline).Microseconds(), 1))
	}
	if !m.Status.OK() {
		f.Status = &frameStatus{Code: int32(m.Status.Code())}
		text(m.Status.Msg(), &f.Status.Msg, &f.Status.Msg64)
		text(m.Status.CauseText(), &f.Status.Cause, &f.Status.Cause64)
	}
	// Pairs keep their order: if one needs base64, all of them go there.
	allText := true
	m.Meta.Range(func(k, v string) bool {
		allText = utf8.ValidString(k) && utf8.ValidString(v)
		return allText
	})
	m.Meta.Range(func(k, v string) bool {
		if allText {
			f.Meta = append(f.Meta, [2]string{k, v})
		} else {
			f.Meta64 = append(f.Meta64, [2][]byte{[]byte(k), []byte(v)})
		}
		return true
	})
	if body := m.Payload; len(body) > 0 {
		if m.BodyCodec == codec.JSONID && api.Valid(body) {
			f.Body = body
		} else {
			f.Body64 = body
		}
	}
	s := api.BorrowStream(nil)
	defer api.ReturnStream(s)
	s.WriteVal(&f)
	if s.Error != nil {
		return dst, fmt.Errorf("jsonproto: %w", s.Error)
	}
	return append(dst, s.Buffer()...), nil
}

// Decode reads the JSON object Encode wrote.
func (jsonProto) Decode(b []byte, m *socket.Message) error {
	var f frame
	if err := api.Unmarshal(b, &f); err != nil {
		return status.New(status.BadMessage, "jsonproto: malformed frame", err)
	}
	m.Type = socket.Type(f.Type)
	m.Seq = f.Seq
	m.BodyCodec = f.Codec
	m.ServiceMethod = f.Method + string(f.Method64)
	if f.TimeoutUS > 0 {
		m.Deadline = time.Now().Add(time.Duration(min(f.TimeoutUS, uint64(1<<63-1)/1000)) * time.Microsecond)
	}
	if s := f.Status; s != nil && s.Code != 0 {
		m.Status = status.Newf(status.Code(s.Code), s.Msg+string(s.Msg64), s.Cause+string(s.Cause64))
	}
	for _, kv := range f.Meta {
		m.Meta.Add(kv[0], kv[1])
	}
	for _, kv := range f.Meta64 {
		m.Meta.Add(string(kv[0]), string(kv[1]))
	}
	if len(f.Body) > 0 {
		m.Payload = f.Body
	} else {
		m.Payload = f.Body64
	}
	return nil
}
