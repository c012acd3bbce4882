package quic_test

import (
	"crypto/tls"
	"testing"

	"github.com/seed-a9a850dd/tp/internal/conformance"
)

// conformanceSelfSigned is conformance.SelfSigned outside a test.
func conformanceSelfSigned() (srv, cli *tls.Config) {
	return conformance.SelfSigned(panicTB{})
}

type panicTB struct{ testing.TB }

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(args) }
