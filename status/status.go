// Package status defines Status, the code, message and cause that tp hands
// out for every failed operation and carries on the wire in replies.
//
// A nil *Status means success; every method is safe to call on nil. The
// root package tp re-exports the type as tp.Status together with the codes,
// so most users never import this package directly.
package status

import (
	"errors"
	"strconv"
)

// Code classifies a Status. Zero is OK. Codes below 100 are tp's own; an
// application is free to use any other value.
type Code int32

// Codes tp itself produces.
const (
	OK                 Code = 0
	Unknown            Code = 1  // an error that carried no code of its own
	ConnClosed         Code = 2  // the connection is closed or broke
	DialFailed         Code = 3  // the peer could not be reached
	WriteFailed        Code = 4  // a message could not be written
	BadMessage         Code = 5  // a frame or body could not be decoded
	NotFound           Code = 6  // no handler serves the service method
	Timeout            Code = 7  // a deadline passed
	Overloaded         Code = 8  // the peer refuses work for now; retry later
	Internal           Code = 9  // the handler failed or panicked
	Unauthorized       Code = 10 // the peer refused the credentials
	TooLarge           Code = 11 // a message exceeds the size limit
	Canceled           Code = 12 // the caller's context was canceled
	Unsupported        Code = 13 // an unknown codec, filter, proto or message type
	InvalidArgument    Code = 14 // the argument broke a rule of the handler
	ShuttingDown       Code = 15 // the peer is closing and accepts no new work
	FailedPrecondition Code = 16 // the operation is not valid in the current state
)

var codeNames = [...]string{
	OK:                 "ok",
	Unknown:            "unknown",
	ConnClosed:         "connection closed",
	DialFailed:         "dial failed",
	WriteFailed:        "write failed",
	BadMessage:         "bad message",
	NotFound:           "not found",
	Timeout:            "timeout",
	Overloaded:         "overloaded",
	Internal:           "internal error",
	Unauthorized:       "unauthorized",
	TooLarge:           "message too large",
	Canceled:           "canceled",
	Unsupported:        "unsupported",
	InvalidArgument:    "invalid argument",
	ShuttingDown:       "shutting down",
	FailedPrecondition: "failed precondition",
}

// String returns the name of a well-known code, or its number.
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code " + strconv.Itoa(int(c))
}

// Status is the outcome of an operation: a code, a message for people and an
// optional cause. A Status is immutable once made, so it may be shared
// between goroutines; nil means OK.
type Status struct {
	code  Code
	msg   string
	cause error
}

// New returns a Status. A nil cause is allowed. New never returns nil, not
// even for code OK.
func New(code Code, msg string, cause error) *Status {
	return &Status{code: code, msg: msg, cause: cause}
}

// Newf is New with the cause given as text, as it arrives from the wire.
// An empty cause means none.
func Newf(code Code, msg, cause string) *Status {
	s := &Status{code: code, msg: msg}
	if cause != "" {
		s.cause = errors.New(cause)
	}
	return s
}

// From turns err into a Status: nil stays nil, a *Status found by errors.As
// is returned as it is, and any other error becomes code with err as cause.
func From(err error, code Code, msg string) *Status {
	if err == nil {
		return nil
	}
	var s *Status
	if errors.As(err, &s) {
		return s
	}
	return New(code, msg, err)
}

// OK reports whether s means success: s is nil or its code is OK.
func (s *Status) OK() bool { return s == nil || s.code == OK }

// Code returns the code; OK for nil.
func (s *Status) Code() Code {
	if s == nil {
		return OK
	}
	return s.code
}

// Msg returns the message for people; empty for nil.
func (s *Status) Msg() string {
	if s == nil {
		return ""
	}
	return s.msg
}

// Cause returns the underlying error, or nil.
func (s *Status) Cause() error {
	if s == nil {
		return nil
	}
	return s.cause
}

// CauseText returns the cause's text, or "" when there is none.
func (s *Status) CauseText() string {
	if s == nil || s.cause == nil {
		return ""
	}
	if c, ok := s.cause.(*Status); ok && c != nil {
		return string(c.appendText(nil))
	}
	return s.cause.Error()
}

// Error returns "msg: cause (code)", leaving out the empty parts. A cause
// that is itself a Status gives its message and cause, not its code: one
// status, one code, printed once.
func (s *Status) Error() string {
	if s == nil {
		return "ok"
	}
	b := s.appendText(make([]byte, 0, len(s.msg)+64))
	if len(b) > 0 {
		b = append(b, " ("...)
	} else {
		b = append(b, '(')
	}
	b = append(b, s.code.String()...)
	b = append(b, ')')
	return string(b)
}

// appendText appends "msg: cause", a Status cause by its own text.
func (s *Status) appendText(b []byte) []byte {
	b = append(b, s.msg...)
	if s.cause == nil {
		return b
	}
	if len(s.msg) > 0 {
		b = append(b, ": "...)
	}
	if c, ok := s.cause.(*Status); ok && c != nil {
		return c.appendText(b)
	}
	return append(b, s.cause.Error()...)
}

// Unwrap returns the cause, so errors.Is and errors.As see through a Status.
func (s *Status) Unwrap() error { return s.Cause() }

// Is reports whether target is a *Status with the same code and message,
// so a sentinel status matches itself even after crossing the wire. It
// does not match by code alone, which would make every timeout "the same
// error": to test a code, compare Code (or tp.CodeOf(err)).
func (s *Status) Is(target error) bool {
	t, ok := target.(*Status)
	return ok && t != nil && s != nil && s.code == t.code && s.msg == t.msg
}
