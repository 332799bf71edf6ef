package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

func TestGeneratedEvents(t *testing.T) {
	c := newGenerator("t1", time.Now()).corpus(genBlock * 8)
	types := map[string]int{}
	for i := 0; i < c.len(); i++ {
		body := c.body(i)
		ev, err := schemas.Decode(body)
		if err != nil {
			t.Fatalf("event %d invalid: %v\n%s", i, err, body)
		}
		types[ev.Type]++
		if got := stream.Subject(ev); got != c.subject(i) {
			t.Errorf("event %d: subject %q, stream.Subject says %q", i, c.subject(i), got)
		}
		if ev.ID != c.ids[i] || indexFromID(ev.ID) != i {
			t.Errorf("event %d: id %q (index %d)", i, ev.ID, indexFromID(ev.ID))
		}
		if n := len(body); n < 200 || n > 450 {
			t.Errorf("event %d (%s) is %d bytes, want 200-450", i, ev.Type, n)
		}
		if !json.Valid(body) || bytes.ContainsRune(body, '\n') {
			t.Errorf("event %d is not compact JSON: %s", i, body)
		}
	}
	for _, typ := range []string{schemas.TypeJobCreated, schemas.TypeJobStarted, schemas.TypeJobCompleted, schemas.TypeJobFailed,
		schemas.TypeUserAdded, schemas.TypeSubscriptionChanged, schemas.TypeOrganizationUpdated, schemas.TypeInvoicePaid} {
		if types[typ] == 0 {
			t.Errorf("no %s events generated", typ)
		}
	}
	if avg := c.avgBodyBytes(); avg < 300 || avg > 350 {
		t.Errorf("average body %.0f bytes, want 300-350", avg)
	}
}

func TestUsageCount(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 62, 63, 64, 65, 1000, 20_000} {
		var want uint64
		for i := 0; i < n; i++ {
			if usageCounted(i) {
				want++
			}
		}
		if got := usageCount(n); got != want {
			t.Errorf("usageCount(%d) = %d, want %d", n, got, want)
		}
	}
	g := newGenerator("t2", time.Now())
	for i := 0; i < genBlock*4; i++ {
		e := g.event(i)
		counted := e.typ == schemas.TypeJobCreated || e.typ == schemas.TypeJobCompleted || e.typ == schemas.TypeJobFailed
		if counted != usageCounted(i) {
			t.Errorf("event %d (%s): usageCounted = %v", i, e.typ, usageCounted(i))
		}
	}
}

func TestParseMemStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    memStatus
		wantErr bool
	}{
		{"linux", "Name:\ttally\nVmPeak:\t  900 kB\nVmHWM:\t   204800 kB\nVmRSS:\t   102400 kB\nThreads: 9\n",
			memStatus{HWM: 200 << 20, RSS: 100 << 20}, false},
		{"missing", "Name:\ttally\nVmRSS:\t 10 kB\n", memStatus{}, true},
		{"bad unit", "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", memStatus{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemStatus([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRowPass(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want bool
	}{
		{"throughput above", Row{Kind: Throughput, Value: 80, Ceiling: 100, MinRatio: 0.7}, true},
		{"throughput at", Row{Kind: Throughput, Value: 70, Ceiling: 100, MinRatio: 0.7}, true},
		{"throughput below", Row{Kind: Throughput, Value: 69, Ceiling: 100, MinRatio: 0.7}, false},
		{"throughput no ceiling", Row{Kind: Throughput, Value: 69, MinRatio: 0.7}, false},
		{"latency under", Row{Kind: Latency, Value: 400, Ceiling: 50, Max: 1000}, true},
		{"latency over", Row{Kind: Latency, Value: 1001, Ceiling: 50, Max: 1000}, false},
		{"memory over", Row{Kind: Memory, Value: 300, Ceiling: 256, Max: 256}, false},
		{"info", Row{Kind: Info, Value: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.row.Pass(); got != tt.want {
				t.Errorf("Pass() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {12.345, "12.3"}, {99.96, "100.0"}, {100, "100"}, {1234.5, "1,235"}, {2_000_000, "2,000,000"}, {-4321, "-4,321"},
	}
	for _, tt := range tests {
		if got := num(tt.in); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	rep := Report{Machine: "2 CPUs", Rows: []Row{
		{Key: "ingest", Name: "Ingest", Kind: Throughput, Unit: "events/s", Value: 45_000, Ceiling: 60_000, CeilName: "raw", MinRatio: 0.7, Note: "a note"},
		{Key: "p99", Name: "Freshness p99", Kind: Latency, Unit: "ms", Value: 420, Ceiling: 30, CeilName: "floor", Max: 1000},
		{Key: "info", Name: "Ceiling a", Kind: Info, Unit: "events/s", Value: 90_000},
	}}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| 1 | Ingest [1] | 45,000 events/s | 60,000 events/s | raw | 75.0% | ≥ 70% of ceiling | PASS |",
		"| 2 | Freshness p99 | 420 ms | 30.0 ms | floor | 14.00× | ≤ 1,000 ms | PASS |",
		"| 3 | Ceiling a | 90,000 events/s | — | — | — | — | — |",
		"[1] a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestValidIdent(t *testing.T) {
	for s, want := range map[string]bool{"tally_bench": true, "_x1": true, "1x": false, "a-b": false, "": false, "a;DROP": false} {
		if got := validIdent(s); got != want {
			t.Errorf("validIdent(%q) = %v", s, got)
		}
	}
}

func TestParseProcTicks(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ticks
		wantErr bool
	}{
		{"plain", "4242 (tally) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 0 0", ticks{user: 150, sys: 25}, false},
		{"spaces in name", "7 (clickhouse serv) R 1 7 7 0 -1 0 0 0 0 0 1000 200 0 0 20 0 1 0 5 0 0", ticks{user: 1000, sys: 200}, false},
		{"short", "7 (x) R 1", ticks{}, true},
		{"garbage", "no parens here", ticks{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcTicks([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseProjectorMetrics(t *testing.T) {
	in := `# HELP tally_projector_batch_size Messages per projector batch.
# TYPE tally_projector_batch_size histogram
tally_projector_batch_size_bucket{le="1"} 0
tally_projector_batch_size_sum 20000
tally_projector_batch_size_count 8
tally_projector_insert_seconds_sum 1.6
tally_projector_insert_seconds_count 8
tally_projector_dedup_lookups_total 0
tally_projector_insert_errors_total 1
go_goroutines 12
`
	got, err := parseProjectorMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := projectorStats{batches: 8, batchEvents: 20000, insertCount: 8, insertSecs: 1.6, insertErrors: 1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if s := got.String(); !strings.Contains(s, "8 batches of 2,500 events on average, INSERT 200 ms on average") {
		t.Errorf("String() = %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.ProjectorCommand = []string{"tally", "project"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"default", func(*Config) {}, ""},
		{"quick", func(c *Config) { *c = c.Quick() }, ""},
		{"only", func(c *Config) { c.Only = []string{GroupMemory, GroupFreshness} }, ""},
		{"unknown group", func(c *Config) { c.Only = []string{"speed"} }, `unknown measurement group "speed"`},
		{"few events", func(c *Config) { c.Events = 10 }, "events must be >= 1000"},
		{"no projector", func(c *Config) { c.ProjectorCommand = nil }, "projector command is required"},
		{"bad prefix", func(c *Config) { c.DatabasePrefix = "x;DROP" }, "database prefix"},
		{"slow rate", func(c *Config) { c.FreshnessRate = 5 }, "freshness rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestInsertInto(t *testing.T) {
	tests := []struct {
		table   string
		want    string
		wantErr bool
	}{
		{"events", "INSERT INTO events (id, type, source, time,", false},
		{"events_plain", "INSERT INTO events_plain (id,", false},
		{"events; DROP TABLE x", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.table, func(t *testing.T) {
			got, err := insertInto(tt.table)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
			if !tt.wantErr && !strings.HasSuffix(got, "ref_id, severity)") {
				t.Errorf("got %q: want every column", got)
			}
		})
	}
}
