package rawproto_test

import (
	"testing"

	"github.com/seed-a9a850dd/tp/internal/prototest"
	"github.com/seed-a9a850dd/tp/proto/rawproto"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTrip(t *testing.T) { prototest.Run(t, rawproto.New()) }

func FuzzUnpack(f *testing.F) {
	for _, s := range prototest.Seeds(rawproto.New()) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { prototest.Unpack(t, rawproto.New(), data) })
}
