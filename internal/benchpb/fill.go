// Package benchpb holds the message of the classic Go RPC benchmark
// (rpcx-benchmark): benchmark.proto, unchanged but for its go_package, and
// its generated code.
package benchpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative benchmark.proto

import "google.golang.org/protobuf/proto"

const text = "许多往事在眼前一幕一幕，变的那麼模糊"

// New returns the message filled as every system in the benchmark fills it:
// every string field holds the same sentence, every integer 100000, every
// bool true, and field5 stays empty. It encodes to 581 bytes.
func New() *BenchmarkMessage {
	s, i32, i64, t := proto.String(text), proto.Int32(100000), proto.Int64(100000), proto.Bool(true)
	return &BenchmarkMessage{
		Field1: s, Field9: s, Field18: s, Field80: t, Field81: t,
		Field2: i32, Field3: i32, Field280: i32, Field6: i32, Field22: i64,
		Field4: s, Field59: t, Field7: s, Field16: i32, Field130: i32,
		Field12: t, Field17: t, Field13: t, Field14: t, Field104: i32,
		Field100: i32, Field101: i32, Field102: s, Field103: s, Field29: i32,
		Field30: t, Field60: i32, Field271: i32, Field272: i32, Field150: i32,
		Field23: i32, Field24: t, Field25: i32, Field78: t, Field67: i32,
		Field68: i32, Field128: i32, Field129: s, Field131: i32,
	}
}
