package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareSmoke builds the tool and runs a tiny comparison: every system
// must serve every layout from its own process without an error, in JSON
// and as a table.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench tool")
	}
	exe := filepath.Join(t.TempDir(), "bench")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(exe, "-compare", "-rounds", "1", "-n", "300", "-c", "4", "-sessions", "1,2", "-json").Output()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON result: %q: %v", line, err)
		}
		if r.Errors != 0 || r.Throughput <= 0 || r.P50MS <= 0 || r.P999MS < r.P50MS {
			t.Errorf("implausible result: %+v", r)
		}
		seen[r.System+"/"+string(rune('0'+r.Sessions))] = true
	}
	for _, sys := range systemNames {
		for _, s := range []string{"1", "2"} {
			if !seen[sys+"/"+s] {
				t.Errorf("no result for %s over %s sessions", sys, s)
			}
		}
	}
	table, err := exec.Command(exe, "-n", "200", "-c", "2", "-sessions", "1", "-proto", "json", "-xfer", "gzip").Output()
	if err != nil {
		t.Fatalf("run with -proto json -xfer gzip: %v", err)
	}
	if !strings.Contains(string(table), "| 2 × 1 | tp |") {
		t.Fatalf("table lacks the tp row:\n%s", table)
	}

	// tp over its other transports.
	for _, tr := range []string{"unix", "websocket", "quic", "kcp"} {
		table, err := exec.Command(exe, "-n", "200", "-c", "2", "-sessions", "1,2", "-transport", tr).Output()
		if err != nil {
			t.Fatalf("run with -transport %s: %v", tr, err)
		}
		if !strings.Contains(string(table), "| 2 × 2 | tp |") || !strings.Contains(string(table), "| 0 |\n") {
			t.Fatalf("-transport %s: no clean tp row:\n%s", tr, table)
		}
	}

	// The discovery client over one and two server processes.
	table, err = exec.Command(exe, "-pool", "1,2", "-n", "300", "-c", "4", "-rounds", "1").Output()
	if err != nil {
		t.Fatalf("run -pool: %v", err)
	}
	for _, row := range []string{"| 4 | session | 1 |", "| 4 | pool/1 | 1 |", "| 4 | pool/2 | 2 |"} {
		if !strings.Contains(string(table), row) || !strings.Contains(string(table), "| 0 |\n") {
			t.Fatalf("-pool: no clean row %q:\n%s", row, table)
		}
	}

	// The HTTP front against tp's client and net/http.
	table, err = exec.Command(exe, "-http", "-n", "300", "-c", "4", "-sessions", "1", "-rounds", "1").Output()
	if err != nil {
		t.Fatalf("run -http: %v", err)
	}
	for _, row := range []string{"| 4 × 1 | tp |", "| 4 × 1 | tp/http |", "| 4 × 1 | net/http |"} {
		if !strings.Contains(string(table), row) {
			t.Fatalf("-http: no row %q:\n%s", row, table)
		}
	}
	if strings.Count(string(table), "| 0 |\n") != 3 {
		t.Fatalf("-http: errors:\n%s", table)
	}

	// The stream benchmark: tp and gRPC, over 1 and 3 streams.
	out, err = exec.Command(exe, "-compare", "-rounds", "1", "-n", "300", "-streams", "1,3", "-json").Output()
	if err != nil {
		t.Fatalf("run -streams: %v\n%s", err, out)
	}
	seen = map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r streamResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON result: %q: %v", line, err)
		}
		if r.Errors != 0 || r.Throughput <= 0 || r.MBPerS <= 0 || r.Messages != 300 {
			t.Errorf("implausible stream result: %+v", r)
		}
		seen[r.System+"/"+string(rune('0'+r.Streams))] = true
	}
	for _, sys := range streamSystems {
		for _, k := range []string{"1", "3"} {
			if !seen[sys+"/"+k] {
				t.Errorf("no stream result for %s over %s streams", sys, k)
			}
		}
	}
}
