package gzip_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"testing"

	"github.com/seed-a9a850dd/tp/internal/benchpb"
	"github.com/seed-a9a850dd/tp/xfer"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
	"google.golang.org/protobuf/proto"
)

func filter(t testing.TB) xfer.Filter {
	f, err := xfer.ByID(gzip.ID)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	f := filter(t)
	for _, n := range []int{0, 1, 511, 512, 513, 100_000, 3 << 20} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i % 251 * i % 7)
		}
		packed, err := f.OnPack([]byte("hdr"), src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.OnUnpack([]byte("hdr"), packed[3:], n)
		if err != nil || !bytes.Equal(out[3:], src) || string(out[:3]) != "hdr" {
			t.Fatalf("%d bytes: round trip failed: %v", n, err)
		}
		// The standard library reads what it writes: it is plain gzip.
		zr, err := stdgzip.NewReader(bytes.NewReader(packed[3:]))
		if err != nil {
			t.Fatal(err)
		}
		if std, _ := io.ReadAll(zr); !bytes.Equal(std, src) {
			t.Fatalf("%d bytes: compress/gzip reads something else", n)
		}
	}
}

func TestBombStopsAtLimit(t *testing.T) {
	f := filter(t)
	bomb, _ := f.OnPack(nil, make([]byte, 64<<20)) // 64 MiB of zeros: ~64 KiB packed
	const limit = 1 << 20
	var before, after runtimeMem
	before.read()
	if _, err := f.OnUnpack(nil, bomb, limit); err == nil {
		t.Fatal("a 64 MiB bomb passed a 1 MiB limit")
	}
	after.read()
	if grew := after.total - before.total; grew > 4*limit {
		t.Fatalf("refusing the bomb allocated %d bytes; the limit is %d", grew, limit)
	}
	if out, err := f.OnUnpack(nil, bomb[:len(bomb)/2], 128<<20); err == nil {
		t.Fatalf("a truncated stream decoded to %d bytes", len(out))
	}
}

func TestNewRejectsBadLevel(t *testing.T) {
	if _, err := gzip.New('G', "gzip-bad", 42); err == nil {
		t.Fatal("level 42 accepted")
	}
	f, err := gzip.New('G', "gzip-fast", stdgzip.BestSpeed)
	if err != nil || f.ID() != 'G' || f.Name() != "gzip-fast" {
		t.Fatalf("New: %v", err)
	}
}

func FuzzUnpack(f *testing.F) {
	flt := filter(f)
	good, _ := flt.OnPack(nil, []byte("hello hello hello hello"))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		if out, err := flt.OnUnpack(nil, data, limit); err == nil && len(out) > limit {
			t.Fatalf("%d bytes out, over the limit of %d", len(out), limit)
		}
	})
}

func benchSrc(b *testing.B) []byte {
	src, err := proto.Marshal(benchpb.New())
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkFilter compares this filter with compress/gzip used directly (no
// pooling, no limit) at the same level, on the 581-byte benchmark message,
// pack and unpack.
func BenchmarkFilter(b *testing.B) {
	src := benchSrc(b)
	b.Run("filter", func(b *testing.B) {
		f := filter(b)
		b.ReportAllocs()
		var buf, out []byte
		for i := 0; i < b.N; i++ {
			buf, _ = f.OnPack(buf[:0], src)
			out, _ = f.OnUnpack(out[:0], buf, 1<<20)
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		zw := stdgzip.NewWriter(&buf)
		var zr stdgzip.Reader
		out := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			buf.Reset()
			zw.Reset(&buf)
			zw.Write(src)
			zw.Close()
			zr.Reset(bytes.NewReader(buf.Bytes()))
			out = out[:0]
			out, _ = readAll(&zr, out)
		}
	})
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}
