package tp

import (
	"context"
	"errors"

	"github.com/seed-a9a850dd/tp/status"
)

// Status is the outcome of an operation: a code, a message and an optional
// cause. nil means OK, and every method is safe on nil. It is an error, so
// errors.As finds it inside wrapped errors and errors.Is matches it by code.
// A Status is immutable once made. See package status for its methods.
type Status = status.Status

// Code classifies a Status. Codes below 100 are tp's; applications may use
// any other value.
type Code = status.Code

// The codes tp itself produces.
const (
	CodeOK                 = status.OK
	CodeUnknown            = status.Unknown
	CodeConnClosed         = status.ConnClosed
	CodeDialFailed         = status.DialFailed
	CodeWriteFailed        = status.WriteFailed
	CodeBadMessage         = status.BadMessage
	CodeNotFound           = status.NotFound
	CodeTimeout            = status.Timeout
	CodeOverloaded         = status.Overloaded
	CodeInternal           = status.Internal
	CodeUnauthorized       = status.Unauthorized
	CodeTooLarge           = status.TooLarge
	CodeCanceled           = status.Canceled
	CodeUnsupported        = status.Unsupported
	CodeInvalidArgument    = status.InvalidArgument
	CodeShuttingDown       = status.ShuttingDown
	CodeFailedPrecondition = status.FailedPrecondition
)

// NewStatus returns a Status with the given code, message and cause (which
// may be nil).
func NewStatus(code Code, msg string, cause error) *Status { return status.New(code, msg, cause) }

// toStatus turns a handler's or plugin's error into a Status: a *Status
// inside err is kept, a context's end is CodeTimeout or CodeCanceled (a
// handler that returns its Context's error says why it stopped), anything
// else becomes an internal error, and nil (or a nil *Status held in an
// error) is success.
func toStatus(err error) *Status {
	var st *Status
	switch {
	case err == nil || errors.As(err, &st):
	case errors.Is(err, context.DeadlineExceeded):
		return NewStatus(CodeTimeout, "the handler's deadline passed", err)
	case errors.Is(err, context.Canceled):
		return NewStatus(CodeCanceled, "the handler's context was canceled", err)
	}
	return status.From(err, CodeInternal, "handler failed")
}

// CodeOf returns the code of the *Status inside err: CodeOK for nil, and
// CodeUnknown for an error that holds no Status.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	return status.From(err, CodeUnknown, "").Code()
}
