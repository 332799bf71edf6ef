package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

func TestAlertsOptions(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		thresholds []int
		interval   time.Duration
		wantErr    bool
	}{
		{"defaults", nil, []int{80, 90, 100}, time.Minute, false},
		{"custom", []string{"--quota-thresholds", "50, 75", "--alerts-interval", "30s"}, []int{50, 75}, 30 * time.Second, false},
		{"bad threshold", []string{"--quota-thresholds", "80,x"}, nil, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("alerts")
			var ao alertsOptions
			ao.register(fs)
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := ao.config()
			if (err != nil) != tc.wantErr {
				t.Fatalf("config() error %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.QuotaThresholds, tc.thresholds) || cfg.Interval != tc.interval {
				t.Fatalf("thresholds %v interval %v, want %v %v", cfg.QuotaThresholds, cfg.Interval, tc.thresholds, tc.interval)
			}
		})
	}
}

// TestAlertsTwoProcesses runs two `tally alerts` processes against the same
// NATS and ClickHouse, evaluating every second: the quota crossing in the
// data is raised once, and no alert is published twice.
func TestAlertsTwoProcesses(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tally")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	natsURL, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, natsURL)
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	ch := testenv.ClickHouse(t)

	// r1/o1: 100 quota minutes this period, 85 used (80 % crossed).
	now := time.Now().UTC().Truncate(time.Second)
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO events (id, type, time, time_ms, reseller_id, org_id, plan, status, quota_minutes, amount_minor, currency, period_start, period_end, job_id, model, language, created_at, media_ms)")
	if err != nil {
		t.Fatal(err)
	}
	at := now.Add(-48 * time.Hour)
	if err := b.Append("sub-1", "subscription.changed", at, uint64(at.UnixMilli()), "r1", "o1", "pro", "active", uint64(100), int64(4900), "EUR",
		now.Add(-10*24*time.Hour), now.Add(20*24*time.Hour), "", "", "", time.Unix(0, 0), uint64(0)); err != nil {
		t.Fatal(err)
	}
	for i := range 85 {
		at := now.Add(-time.Duration(i+1) * time.Minute)
		if err := b.Append(fmt.Sprintf("job-%d", i), "job.completed", at, uint64(at.UnixMilli()), "r1", "o1", "", "", uint64(0), int64(0), "",
			time.Unix(0, 0), time.Unix(0, 0), fmt.Sprintf("j%d", i), "nova-2", "en", at.Add(-time.Minute), uint64(60000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	var procs []*exec.Cmd
	for i := range 2 {
		cmd := exec.Command(bin, "alerts", "--nats-url", natsURL, "--clickhouse-addr", ch.Config.Addr, "--clickhouse-database", ch.Config.Database,
			"--alerts-interval", "1s", "--ops-listen", "", "--log-level", "warn")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("alerts process %d:\n%s", i, out.String())
			}
		})
		procs = append(procs, cmd)
	}

	// Collect what they publish while both evaluate window after window
	// (the stream exists once a process has set up).
	waitUntil(t, 20*time.Second, "the TALLY_ALERTS stream", func() bool {
		_, err := js.Stream(t.Context(), alertspec.StreamName)
		return err == nil
	})
	cons, err := js.OrderedConsumer(t.Context(), alertspec.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{alertspec.SubjectPrefix + ">"}})
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]int{} // alert key|state -> messages
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var a alertspec.Alert
			if err := json.Unmarshal(m.Data(), &a); err != nil {
				t.Fatal(err)
			}
			published[a.Key+"|"+a.State]++
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGINT)
	}

	quota := alertspec.AlertKey(alertspec.RuleQuota, "r1", "o1", now.Add(-10*24*time.Hour).Format(time.RFC3339), "80") + "|firing"
	if published[quota] != 1 {
		t.Errorf("quota 80%% alert published %d times, want once (published: %v)", published[quota], published)
	}
	for k, n := range published {
		if n != 1 {
			t.Errorf("alert %s published %d times, want once", k, n)
		}
	}
	var rows uint64
	if err := ch.Conn.QueryRow(t.Context(), "SELECT count() FROM alerts FINAL WHERE rule = 'quota' AND state = 'firing'").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("firing quota alerts stored: %d (%v), want 1", rows, err)
	}
}
