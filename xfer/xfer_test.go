package xfer_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/seed-a9a850dd/tp/xfer"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
	"github.com/seed-a9a850dd/tp/xfer/md5"
)

// tag appends its name on pack and strips it on unpack, so a test can see
// the order filters ran in.
type tag byte

func (t tag) ID() byte     { return byte(t) }
func (t tag) Name() string { return "tag-" + string(rune(t)) }
func (t tag) OnPack(dst, src []byte) ([]byte, error) {
	return append(append(dst, src...), byte(t)), nil
}
func (t tag) OnUnpack(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 || src[len(src)-1] != byte(t) {
		return dst, errors.New("tag " + string(rune(t)) + " undone out of order")
	}
	return append(dst, src[:len(src)-1]...), nil
}

func init() {
	xfer.Register(tag('A'))
	xfer.Register(tag('B'))
	xfer.Register(tag('C'))
}

func TestPipeOrder(t *testing.T) {
	p := xfer.Pipe{'A', 'B', 'C'}
	packed, err := p.Pack([]byte(">"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if string(packed) != ">xABC" {
		t.Fatalf("packed %q, want filters in order: >xABC", packed)
	}
	out, err := p.Unpack([]byte("<"), packed[1:], 100)
	if err != nil || string(out) != "<x" {
		t.Fatalf("unpacked %q, %v; want <x undone in reverse", out, err)
	}
	if _, err := (xfer.Pipe{'A', 'B', 'C'}).Unpack(nil, []byte("xCBA"), 100); err == nil {
		t.Fatal("undoing in the wrong order succeeded")
	}
}

func TestPipeChains(t *testing.T) {
	src := bytes.Repeat([]byte("tp says hello; "), 1000)
	for _, p := range []xfer.Pipe{nil, {gzip.ID}, {md5.ID}, {gzip.ID, md5.ID}, {md5.ID, gzip.ID, 'A', md5.ID}} {
		packed, err := p.Pack(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		// The limit bounds every stage, and a stage may carry a filter's
		// overhead (md5's digest) above the final size.
		out, err := p.Unpack(nil, packed, len(src)+64)
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("pipe %q: round trip failed: %v", p, err)
		}
		if len(p) > 0 {
			if _, err := p.Unpack(nil, packed, len(src)-1); err == nil {
				t.Fatalf("pipe %q: output over the limit was accepted", p)
			}
		}
	}
}

func TestUnknownFilter(t *testing.T) {
	p := xfer.Pipe{'A', 'Q'}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "'Q'") {
		t.Fatalf("Check: %v, want an error naming 'Q'", err)
	}
	if _, err := p.Pack(nil, []byte("x")); err == nil {
		t.Fatal("packing through an unknown filter succeeded")
	}
	if _, err := xfer.ByName("nope"); err == nil {
		t.Fatal("unknown name found")
	}
	if f, err := xfer.ByName("gzip"); err != nil || f.ID() != gzip.ID {
		t.Fatalf("gzip by name: %v", err)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering id 'A' twice did not panic")
		}
	}()
	xfer.Register(tag('A'))
}

func FuzzPipeUnpack(f *testing.F) {
	src := []byte("some bytes to filter, some bytes to filter")
	for _, p := range []xfer.Pipe{{gzip.ID}, {md5.ID}, {gzip.ID, md5.ID}} {
		packed, _ := p.Pack(nil, src)
		f.Add([]byte(p), packed)
	}
	f.Fuzz(func(t *testing.T, pipe, data []byte) {
		const limit = 1 << 16
		out, err := xfer.Pipe(pipe).Unpack(nil, data, limit)
		if err == nil && len(out) > limit {
			t.Fatalf("produced %d bytes past the limit of %d", len(out), limit)
		}
	})
}
