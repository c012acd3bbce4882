// Package examples_test builds every example and runs it: each must finish
// by itself, exit 0 and print what it promises.
package examples_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example")
	}
	tests := []struct {
		dir, want string
		args      []string
	}{
		{"simple", "1+2+3+4 = 10", nil},
		{"push", "broadcast reached 3 clients", nil},
		{"async", "squares: [0 1 4 9 16 25 36 49 64 81]", nil},
		{"callback", "Hello, client-7!", nil},
		{"subroute", "unknown: nothing serves /v3/anything", nil},
		{"meta", `client: reply "hi", handled-by=server-1`, nil},
		{"wire", `got REPLY seq=1: "hello, world (lang en)"`, nil},
		{"restart", "2 processes served the calls across the restart; none failed", nil},
		{"http", "HTTP: 200 OK 3 (Tp-Meta-Served-By: examples/http)", []string{"-demo"}},
	}
	bin := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			exe := filepath.Join(bin, tt.dir)
			if out, err := exec.Command("go", "build", "-o", exe, "./"+tt.dir).CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, exe, tt.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}
