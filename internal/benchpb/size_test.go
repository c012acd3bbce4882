package benchpb

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestSize(t *testing.T) {
	if n := proto.Size(New()); n != 581 {
		t.Fatalf("benchmark message encodes to %d bytes, want 581", n)
	}
}
