package status_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/seed-a9a850dd/tp/status"
)

func TestError(t *testing.T) {
	tests := []struct {
		s    *status.Status
		want string
	}{
		{nil, "ok"},
		{status.New(status.NotFound, "no route /x", nil), "no route /x (not found)"},
		{status.New(status.ConnClosed, "call failed", io.EOF), "call failed: EOF (connection closed)"},
		{status.New(status.Timeout, "", nil), "(timeout)"},
		{status.New(1234, "app", nil), "app (code 1234)"},
		{status.Newf(status.Internal, "boom", "panic: x"), "boom: panic: x (internal error)"},
		{status.Newf(status.Internal, "boom", ""), "boom (internal error)"},
	}
	for _, tt := range tests {
		if got := tt.s.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestNilIsOK(t *testing.T) {
	var s *status.Status
	if !s.OK() || s.Code() != status.OK || s.Msg() != "" || s.Cause() != nil || s.CauseText() != "" {
		t.Fatal("nil status is not an empty OK")
	}
	if !status.New(status.OK, "fine", nil).OK() || status.New(status.Unknown, "", nil).OK() {
		t.Fatal("OK() disagrees with the code")
	}
}

func TestErrorsInterop(t *testing.T) {
	s := status.New(status.WriteFailed, "write", io.ErrClosedPipe)
	wrapped := fmt.Errorf("sending: %w", s)
	var got *status.Status
	if !errors.As(wrapped, &got) || got != s {
		t.Fatal("errors.As did not find the status")
	}
	if !errors.Is(wrapped, io.ErrClosedPipe) {
		t.Fatal("errors.Is did not see the cause")
	}
	if !errors.Is(wrapped, status.New(status.WriteFailed, "write", nil)) {
		t.Fatal("errors.Is does not match a status of the same code and message")
	}
	if errors.Is(wrapped, status.New(status.WriteFailed, "", nil)) || errors.Is(wrapped, status.New(status.Timeout, "write", nil)) {
		t.Fatal("errors.Is matches a status by its code alone")
	}
}

// A status caused by statuses prints one code, the outermost.
func TestErrorTextOneCode(t *testing.T) {
	inner := status.New(status.Timeout, "read deadline passed", errors.New("i/o timeout"))
	mid := status.New(status.Timeout, "", inner)
	outer := status.New(status.ConnClosed, "connection closed before the reply", mid)
	const want = "connection closed before the reply: read deadline passed: i/o timeout (connection closed)"
	if got := outer.Error(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFrom(t *testing.T) {
	if status.From(nil, status.Internal, "x") != nil {
		t.Fatal("From(nil) is not nil")
	}
	s := status.New(status.Timeout, "t", nil)
	if status.From(fmt.Errorf("w: %w", s), status.Internal, "x") != s {
		t.Fatal("From did not keep the status inside the error")
	}
	got := status.From(io.EOF, status.ConnClosed, "closed")
	if got.Code() != status.ConnClosed || got.Cause() != io.EOF || got.Msg() != "closed" {
		t.Fatalf("From(io.EOF) = %v", got)
	}
}

func ExampleStatus() {
	err := error(status.New(status.NotFound, "no handler for /math/mul", nil))
	var st *status.Status
	if errors.As(err, &st) {
		fmt.Println(st.Code(), "|", st.Msg())
	}
	fmt.Println(err)
	// Output:
	// not found | no handler for /math/mul
	// no handler for /math/mul (not found)
}
