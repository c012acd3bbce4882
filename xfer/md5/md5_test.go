package md5_test

import (
	"errors"
	"testing"

	"github.com/seed-a9a850dd/tp/xfer/md5"
)

func TestDetectsCorruption(t *testing.T) {
	f := md5.Filter{}
	src := []byte("the quick brown fox")
	packed, _ := f.OnPack(nil, src)
	if out, err := f.OnUnpack(nil, packed, 100); err != nil || string(out) != string(src) {
		t.Fatalf("clean frame: %q, %v", out, err)
	}
	for i := range packed { // a flipped bit anywhere, body or digest, is caught
		bad := append([]byte(nil), packed...)
		bad[i] ^= 0x10
		if _, err := f.OnUnpack(nil, bad, 100); !errors.Is(err, md5.ErrMismatch) {
			t.Fatalf("bit flipped at %d: %v, want ErrMismatch", i, err)
		}
	}
	if _, err := f.OnUnpack(nil, packed[:10], 100); err == nil {
		t.Fatal("a frame shorter than its digest passed")
	}
	if _, err := f.OnUnpack(nil, packed, 5); err == nil {
		t.Fatal("a frame over the limit passed")
	}
}

func FuzzUnpack(f *testing.F) {
	good, _ := md5.Filter{}.OnPack(nil, []byte("payload"))
	f.Add(good)
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := md5.Filter{}.OnUnpack(nil, data, 1<<16)
		if err == nil && len(out) != len(data)-16 {
			t.Fatalf("accepted a frame and returned %d of %d bytes", len(out), len(data))
		}
	})
}
