package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRun builds the example and runs it against its own etcd: it must
// finish by itself, show calls on every server, a kill, and a graceful
// stop that costs no call.
func TestRun(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "cluster")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	lines := strings.Split(string(out), "\n")
	find := func(prefix string) []string {
		var got []string
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				got = append(got, l)
			}
		}
		if len(got) == 0 {
			t.Fatalf("no line %q in:\n%s", prefix, out)
		}
		return got
	}
	for _, l := range find("three servers:") {
		for _, name := range []string{"alpha", "beta", "gamma"} {
			if !strings.Contains(l, name) {
				t.Fatalf("%s took no call: %s", name, l)
			}
		}
	}
	if l := find("beta dead:")[0]; strings.Contains(l[strings.Index(l, "calls:"):], "beta") || !strings.HasSuffix(l, "failed: 0") {
		t.Fatalf("after the kill: %s", l)
	}
	if l := find("beta back:"); !strings.Contains(l[len(l)-1][strings.Index(l[len(l)-1], "calls:"):], "beta") {
		t.Fatalf("the restarted server took no call: %s", l[len(l)-1])
	}
	if l := find("gamma gone (no call fails):")[0]; !strings.HasSuffix(l, "failed: 0") {
		t.Fatalf("a graceful stop cost calls: %s", l)
	}
}
