package bench_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tallyhq/tally/bench"
	"github.com/tallyhq/tally/testenv"
)

// TestRunQuick runs the whole bench at smoke-test size against real NATS
// and ClickHouse, with the projector as a child process of a freshly built
// tally binary, and checks that every row of the report is filled. Speed
// targets are the bench's business, not the test's: nothing here asserts
// timing.
func TestRunQuick(t *testing.T) {
	ch := testenv.ClickHouse(t)
	cfg := bench.DefaultConfig().Quick()
	cfg.ClickHouseAddr = ch.Config.Addr
	cfg.ProjectorCommand = []string{buildTally(t), "project"}
	cfg.Dir = t.TempDir()

	var progress strings.Builder
	rep, err := bench.Run(t.Context(), cfg, &progress)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantRows := []struct {
		key       string
		withCeil  bool
		hasTarget bool
	}{
		{"ingest", true, true},
		{"e2e", true, true},
		{"ceiling_pubsub", false, false},
		{"ceiling_insert", false, false},
		{"ceiling_insert_plain", false, false},
		{"raw_pipeline", false, false},
		{"freshness_p50", true, false},
		{"freshness_p99", true, true},
		{"projector_rss", true, true},
		{"projector_catchup", false, false},
	}
	if len(rep.Rows) != len(wantRows) {
		t.Errorf("report has %d rows, want %d", len(rep.Rows), len(wantRows))
	}
	for _, w := range wantRows {
		t.Run(w.key, func(t *testing.T) {
			row, ok := rep.Row(w.key)
			if !ok {
				t.Fatalf("no row %q", w.key)
			}
			if row.Name == "" || row.Unit == "" {
				t.Errorf("row %q has no name or unit: %+v", w.key, row)
			}
			if !(row.Value > 0) {
				t.Errorf("row %q: measured %v, want > 0", w.key, row.Value)
			}
			if w.withCeil && (!(row.Ceiling > 0) || !(row.Ratio() > 0) || row.CeilName == "") {
				t.Errorf("row %q: ceiling %v (%q), ratio %v; want both > 0", w.key, row.Ceiling, row.CeilName, row.Ratio())
			}
			if row.HasTarget() != w.hasTarget {
				t.Errorf("row %q: has target %v, want %v", w.key, row.HasTarget(), w.hasTarget)
			}
		})
	}

	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", md.String())
	if got := strings.Count(md.String(), "\n| "); got != len(wantRows)+1 {
		t.Errorf("markdown table has %d lines, want header + %d rows:\n%s", got, len(wantRows), md.String())
	}

	// The bench cleans up: its databases are gone from the shared server.
	var left uint64
	if err := ch.Conn.QueryRow(t.Context(), "SELECT count() FROM system.databases WHERE startsWith(name, ?)", cfg.DatabasePrefix+"_").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d bench databases left on the server", left)
	}
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) != 0 {
		t.Errorf("temp folder not removed: %v", entries)
	}
}

// buildTally builds the tally command into a temp folder: the bench runs
// the projector as `tally project` in a separate process.
func buildTally(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "tally")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "github.com/tallyhq/tally/cmd/tally")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tally: %v\n%s", err, out)
	}
	return bin
}
