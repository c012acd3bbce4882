module github.com/seed-a9a850dd/tp/examples/browser

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/seed-a9a850dd/tp v0.0.0
	github.com/seed-a9a850dd/tp/transport/websocket v0.0.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	golang.org/x/sync v0.24.0 // indirect
)

replace (
	github.com/seed-a9a850dd/tp => ../..
	github.com/seed-a9a850dd/tp/transport/websocket => ../../transport/websocket
)
