package alerts

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/chstore"
)

func TestResellerSettingsValidate(t *testing.T) {
	cases := []struct {
		name string
		s    ResellerSettings
		ok   bool
	}{
		{"empty", ResellerSettings{}, true},
		{"all set", ResellerSettings{DisabledRules: []string{RuleSpike}, QuotaThresholds: []int{50, 75}, LowUsageShare: 0.1, NoJobsDays: 3, SpikeMinJobs: 5, SpikeMinRatio: 2}, true},
		{"unknown rule", ResellerSettings{DisabledRules: []string{"nope"}}, false},
		{"threshold 0", ResellerSettings{QuotaThresholds: []int{0}}, false},
		{"share 2", ResellerSettings{LowUsageShare: 2}, false},
		{"ratio 1", ResellerSettings{SpikeMinRatio: 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestResellerSettings: r1 alerts at 50% of quota, r2 disabled quota
// alerts, r3 keeps the defaults (80/90/100); all use 60% of their quota.
func TestResellerSettings(t *testing.T) {
	h := newHarness(t, t0)
	start, end := t0.Add(-10*24*time.Hour), t0.Add(20*24*time.Hour)
	var rows []ev
	for _, r := range []string{"r1", "r2", "r3"} {
		rows = append(rows, subscription(r, "o1", "pro", "active", 100, 4900, start, end, start))
		rows = append(rows, completed(r, "o1", t0.Add(-time.Hour), 60, 60000)...)
	}
	insertEvents(t, h.ch, rows)
	if err := SaveSettings(t.Context(), h.ch.Conn, "r1", ResellerSettings{QuotaThresholds: []int{50}}); err != nil {
		t.Fatal(err)
	}
	if err := SaveSettings(t.Context(), h.ch.Conn, "r2", ResellerSettings{QuotaThresholds: []int{10}, DisabledRules: []string{RuleQuota}}); err != nil {
		t.Fatal(err)
	}
	a := h.newAlerts(t)
	h.evaluate(t, a)
	want := map[string]string{AlertKey(RuleQuota, "r1", "o1", start.Format(timeKey), "50"): StateFiring}
	if got := states(h.alerts(t, RuleQuota)); !maps.Equal(got, want) {
		t.Fatalf("quota alerts %v, want %v", got, want)
	}
}

// TestMigrations: the alerts stage's migrations are embedded, in order,
// with the statements expected.
func TestMigrations(t *testing.T) {
	want := map[string]int{"0006_alerts.sql": 1, "0007_alert_webhooks.sql": 2, "0008_alert_settings.sql": 1}
	for _, m := range chstore.Migrations() {
		n, ok := want[m.File]
		if !ok {
			continue
		}
		delete(want, m.File)
		if len(m.Statements) != n {
			t.Errorf("%s: %d statements, want %d", m.File, len(m.Statements), n)
		}
		for _, s := range m.Statements {
			if strings.HasPrefix(s, "--") || strings.HasSuffix(s, ";") {
				t.Errorf("%s: statement not trimmed: %q", m.File, s)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("migrations missing: %v", want)
	}
}
