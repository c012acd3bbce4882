// Package pb holds the generated protobuf code of pbproto's frame.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative frame.proto
