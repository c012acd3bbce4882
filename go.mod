module github.com/seed-a9a850dd/tp

go 1.25

require (
	github.com/json-iterator/go v1.1.12
	github.com/klauspost/compress v1.20.3
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/modern-go/concurrent v0.0.0-20180228061459-e0a39a4cb421 // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sync v0.11.0 // indirect
)
