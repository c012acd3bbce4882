package pbproto_test

import (
	"testing"

	"github.com/seed-a9a850dd/tp/internal/prototest"
	"github.com/seed-a9a850dd/tp/proto/pbproto"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTrip(t *testing.T) { prototest.Run(t, pbproto.New()) }

func FuzzUnpack(f *testing.F) {
	for _, s := range prototest.Seeds(pbproto.New()) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { prototest.Unpack(t, pbproto.New(), data) })
}
