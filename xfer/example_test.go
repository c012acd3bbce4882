package xfer_test

import (
	"fmt"

	"github.com/seed-a9a850dd/tp/xfer"
	"github.com/seed-a9a850dd/tp/xfer/gzip"
	"github.com/seed-a9a850dd/tp/xfer/md5"
)

func ExamplePipe() {
	// Compress, then checksum; unpacking undoes them in reverse.
	p := xfer.Pipe{gzip.ID, md5.ID}
	packed, _ := p.Pack(nil, []byte("hello, hello, hello, hello"))

	packed[len(packed)/2] ^= 1 // damage it in transit
	_, err := p.Unpack(nil, packed, 1<<20)
	fmt.Println(err)
	// Output: xfer md5: checksum mismatch: the frame was corrupted in transit
}
