module github.com/seed-a9a850dd/tp/bench

go 1.26.2

require (
	github.com/prometheus/client_golang v1.25.0
	github.com/seed-a9a850dd/tp v0.0.0
	github.com/seed-a9a850dd/tp/plugin/metrics v0.0.0-00010101000000-000000000000
	github.com/seed-a9a850dd/tp/plugin/tracing v0.0.0-00010101000000-000000000000
	github.com/seed-a9a850dd/tp/transport/kcp v0.0.0-00010101000000-000000000000
	github.com/seed-a9a850dd/tp/transport/quic v0.0.0-00010101000000-000000000000
	github.com/seed-a9a850dd/tp/transport/websocket v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel/sdk v1.47.0
	go.uber.org/goleak v1.3.0
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/coder/websocket v1.8.15 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/juju/ratelimit v1.0.2 // indirect
	github.com/klauspost/cpuid/v2 v2.4.1 // indirect
	github.com/klauspost/reedsolomon v1.14.2 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	github.com/pion/transport/v5 v5.1.4 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/quic-go/quic-go v0.65.0 // indirect
	github.com/tjfoc/gmsm v1.4.1 // indirect
	github.com/xtaci/kcp-go/v5 v5.7.5 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.61.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261019180522-ce908d29299b // indirect
)

replace (
	github.com/seed-a9a850dd/tp => ../
	github.com/seed-a9a850dd/tp/plugin/metrics => ../plugin/metrics
	github.com/seed-a9a850dd/tp/plugin/tracing => ../plugin/tracing
	github.com/seed-a9a850dd/tp/transport/kcp => ../transport/kcp
	github.com/seed-a9a850dd/tp/transport/quic => ../transport/quic
	github.com/seed-a9a850dd/tp/transport/websocket => ../transport/websocket
	// kcp-go reaches a grpc of 2020 (through tjfoc/gmsm), whose genproto
	// of 2019 also holds googleapis/rpc: beside a current grpc the import
	// is ambiguous. A current genproto no longer holds it.
	google.golang.org/genproto => google.golang.org/genproto v0.0.0-20261026165753-2ffab32bce7e
)
