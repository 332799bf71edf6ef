package alerts

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/stream"
)

var t0 = time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"short interval", func(c *Config) { c.Interval = time.Millisecond }, false},
		{"bad bucket", func(c *Config) { c.LeaseBucket = "a.b" }, false},
		{"ttl below interval", func(c *Config) { c.LeaseTTL = time.Second }, false},
		{"no thresholds", func(c *Config) { c.QuotaThresholds = nil }, false},
		{"threshold zero", func(c *Config) { c.QuotaThresholds = []int{0} }, false},
		{"share above 1", func(c *Config) { c.LowUsageShare = 2 }, false},
		{"spike ratio 1", func(c *Config) { c.Spike.MinRatio = 1 }, false},
		{"bad consumer", func(c *Config) { c.ActivityConsumer = "x y" }, false},
		{"activity disabled", func(c *Config) { c.ActivityConsumer = "" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestAlertKeyAndSubject(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"key", AlertKey("quota", "r1", "o1", "2026-11-01T00:00:00Z", "80"), "quota|r1|o1|2026-11-01T00:00:00Z|80"},
		{"subject", Subject("r1", RuleQuota), "tally.alerts.r1.quota"},
		{"subject without reseller", Subject("", RuleSpike), "tally.alerts._.usage_spike"},
		{"lease key", leaseKey("quota", time.Unix(1700000000, 0)), "quota.1700000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func quotaKey(org string, start time.Time, pct int) string {
	return AlertKey(RuleQuota, "r1", org, start.Format(timeKey), fmt.Sprint(pct))
}

// TestQuotaRule walks an organization through its period: thresholds fire
// once each, a mid-period upgrade applies the new quota without firing the
// thresholds already fired again, and the period's end resolves them.
func TestQuotaRule(t *testing.T) {
	h := newHarness(t, t0)
	a := h.newAlerts(t)
	start, end := t0.Add(-10*24*time.Hour).Truncate(time.Hour), t0.Add(20*24*time.Hour).Truncate(time.Hour)
	insertEvents(t, h.ch, []ev{subscription("r1", "o1", "pro", "active", 100, 4900, start, end, start)})
	insertEvents(t, h.ch, []ev{subscription("r1", "o2", "pro", "active", 100, 4900, start, end, start)})
	// o1: 85 minutes; o2: 10 minutes; a job before the period never counts.
	insertEvents(t, h.ch, completed("r1", "o1", start.Add(-time.Hour), 50, 60000))
	insertEvents(t, h.ch, completed("r1", "o1", start.Add(time.Hour), 85, 60000))
	insertEvents(t, h.ch, completed("r1", "o2", start.Add(time.Hour), 10, 60000))

	steps := []struct {
		name  string
		do    func()
		want  map[string]string
		msgs  int
		after time.Duration
	}{
		{"80% fires", func() {}, map[string]string{quotaKey("o1", start, 80): StateFiring}, 1, 0},
		{"evaluating again changes nothing", func() {}, map[string]string{quotaKey("o1", start, 80): StateFiring}, 1, 0},
		{"90% fires", func() { insertEvents(t, h.ch, completed("r1", "o1", t0.Add(-time.Hour), 6, 60000)) },
			map[string]string{quotaKey("o1", start, 80): StateFiring, quotaKey("o1", start, 90): StateFiring}, 2, 0},
		{"upgrade mid-period resolves, no refire", func() {
			insertEvents(t, h.ch, []ev{subscription("r1", "o1", "business", "active", 200, 9900, start, end, t0)})
		}, map[string]string{quotaKey("o1", start, 80): StateResolved, quotaKey("o1", start, 90): StateResolved}, 4, 0},
		{"crossing 80% and 90% of the new quota does not fire again", func() {
			insertEvents(t, h.ch, completed("r1", "o1", t0, 95, 60000)) // 186 of 200
		}, map[string]string{quotaKey("o1", start, 80): StateResolved, quotaKey("o1", start, 90): StateResolved}, 4, 0},
		{"100% of the new quota fires", func() {
			insertEvents(t, h.ch, completed("r1", "o1", t0.Add(time.Minute), 20, 60000)) // 206 of 200
		}, map[string]string{quotaKey("o1", start, 80): StateResolved, quotaKey("o1", start, 90): StateResolved, quotaKey("o1", start, 100): StateFiring}, 5, 0},
		{"period end resolves", func() {}, map[string]string{quotaKey("o1", start, 80): StateResolved, quotaKey("o1", start, 90): StateResolved, quotaKey("o1", start, 100): StateResolved}, 6, 21 * 24 * time.Hour},
	}
	for _, s := range steps {
		s.do()
		h.clk.Add(s.after)
		h.evaluate(t, a)
		if got := states(h.alerts(t, RuleQuota)); !maps.Equal(got, s.want) {
			t.Fatalf("%s: alerts %v, want %v", s.name, got, s.want)
		}
		if got := h.published(t, RuleQuota); len(got) != s.msgs {
			t.Fatalf("%s: published %d messages, want %d: %v", s.name, len(got), s.msgs, got)
		}
	}
	got := h.published(t, RuleQuota)
	if want := "tally.alerts.r1.quota " + quotaKey("o1", start, 80) + "/firing"; got[0] != want {
		t.Fatalf("first message %q, want %q", got[0], want)
	}
}

// TestSingleEvaluator runs two replicas against the same NATS and
// ClickHouse, evaluating concurrently window after window, then a
// restarted replica: every alert is raised exactly once.
func TestSingleEvaluator(t *testing.T) {
	h := newHarness(t, t0)
	start, end := t0.Add(-10*24*time.Hour), t0.Add(20*24*time.Hour)
	var rows []ev
	for i := range 5 {
		org := fmt.Sprintf("o%d", i)
		rows = append(rows, subscription("r1", org, "pro", "active", 100, 4900, start, end, start))
		rows = append(rows, completed("r1", org, start.Add(time.Hour), 80+5*i, 60000)...)
	}
	insertEvents(t, h.ch, rows)
	a1, a2 := h.newAlerts(t), h.newAlerts(t)
	for range 3 {
		h.clk.Add(h.cfg.Interval)
		var wg sync.WaitGroup
		for _, a := range []*Alerts{a1, a2} {
			wg.Go(func() {
				if err := a.Evaluate(t.Context()); err != nil {
					t.Errorf("evaluate: %v", err)
				}
			})
		}
		wg.Wait()
	}
	h.evaluate(t, h.newAlerts(t)) // a restart
	// o0 80%; o1 85%: 80; o2 90%: 80, 90; o3 95%: 80, 90; o4 100%: 80, 90, 100.
	const want = 9
	var n uint64
	if err := h.ch.Conn.QueryRow(t.Context(), "SELECT count() FROM alerts WHERE rule = 'quota'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("%d alert rows, want %d (one write per alert)", n, want)
	}
	msgs := h.published(t, RuleQuota)
	if len(msgs) != want || len(slices.Compact(slices.Sorted(slices.Values(msgs)))) != want {
		t.Fatalf("published %d messages, want %d distinct: %v", len(msgs), want, msgs)
	}
}

// TestRun runs the stage as a process would: it evaluates at once, keeps
// evaluating, and returns nil when its context ends.
func TestRun(t *testing.T) {
	h := newHarness(t, time.Time{})
	h.cfg.Now, h.cfg.Interval, h.cfg.LeaseTTL = nil, time.Second, time.Minute
	h.cfg.ActivityConsumer, h.cfg.Webhooks.Consumer = "run-activity", "run-webhooks"
	if err := stream.Ensure(t.Context(), h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	start, end := now.Add(-24*time.Hour), now.Add(24*time.Hour)
	insertEvents(t, h.ch, []ev{subscription("r1", "o1", "pro", "active", 10, 4900, start, end, start)})
	insertEvents(t, h.ch, completed("r1", "o1", now.Add(-time.Hour), 10, 60000))
	a, err := New(h.cfg, h.js, h.ch.Conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(h.alerts(t, RuleQuota)) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("quota alerts after 10s: %v", h.alerts(t, RuleQuota))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // at least one more window
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := len(h.published(t, RuleQuota)); got != 3 {
		t.Fatalf("published %d quota alerts, want 3", got)
	}
}

// TestLastSeenRefresh: a firing alert's last_seen_at moves forward while it
// keeps firing, without publishing it again.
func TestLastSeenRefresh(t *testing.T) {
	h := newHarness(t, t0)
	start, end := t0.Add(-10*24*time.Hour), t0.Add(20*24*time.Hour)
	insertEvents(t, h.ch, []ev{subscription("r1", "o1", "pro", "active", 100, 4900, start, end, start)})
	insertEvents(t, h.ch, completed("r1", "o1", t0.Add(-time.Hour), 85, 60000))
	a := h.newAlerts(t)
	h.evaluate(t, a)
	first := h.clk.Now().Truncate(time.Second)
	h.clk.Add(20 * time.Minute)
	h.evaluate(t, a)
	h.evaluate(t, a) // within the refresh interval: no write
	var n uint64
	var fired, seen time.Time
	var state string
	err := h.ch.Conn.QueryRow(t.Context(), `SELECT count(), argMax(state, version), argMax(first_fired_at, version), argMax(last_seen_at, version)
FROM alerts WHERE alert_key = ?`, quotaKey("o1", start, 80)).Scan(&n, &state, &fired, &seen)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || state != StateFiring || !fired.Equal(first) || !seen.Equal(first.Add(20*time.Minute+h.cfg.Interval)) {
		t.Fatalf("rows %d, state %s, first fired %v (want %v), last seen %v", n, state, fired, first, seen)
	}
	if got := h.published(t, RuleQuota); len(got) != 1 {
		t.Fatalf("published %v, want the alert once", got)
	}
}
