package main

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent skips the default pool ants starts in its init (this
// package imports tp, which imports ants).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
