package alertspec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResellerSettingsValidate(t *testing.T) {
	cases := []struct {
		name  string
		s     ResellerSettings
		field string // "" = valid
	}{
		{"empty", ResellerSettings{}, ""},
		{"defaults", DefaultSettings(), ""},
		{"all set", ResellerSettings{DisabledRules: []string{RuleSpike, RuleCustomer}, QuotaThresholds: []int{50, 75}, LowUsageShare: 0.1, NoJobsDays: 3, SpikeMinJobs: 5, SpikeMinRatio: 2}, ""},
		{"unknown rule", ResellerSettings{DisabledRules: []string{"nope"}}, "disabled_rules"},
		{"threshold 0", ResellerSettings{QuotaThresholds: []int{0}}, "quota_thresholds"},
		{"threshold 1001", ResellerSettings{QuotaThresholds: []int{1001}}, "quota_thresholds"},
		{"share 2", ResellerSettings{LowUsageShare: 2}, "low_usage_share"},
		{"days -1", ResellerSettings{NoJobsDays: -1}, "no_jobs_days"},
		{"min jobs -1", ResellerSettings{SpikeMinJobs: -1}, "spike_min_jobs"},
		{"ratio 1", ResellerSettings{SpikeMinRatio: 1}, "spike_min_ratio"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			var se *SettingError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field):
				t.Fatalf("Validate() = %v, want a SettingError on %s", err, tc.field)
			}
		})
	}
}

func TestOver(t *testing.T) {
	cases := []struct {
		name string
		s    ResellerSettings
		want ResellerSettings
	}{
		{"nothing overridden", ResellerSettings{}, DefaultSettings()},
		{"some", ResellerSettings{DisabledRules: []string{RuleQuota}, QuotaThresholds: []int{50}, SpikeMinRatio: 4},
			ResellerSettings{DisabledRules: []string{RuleQuota}, QuotaThresholds: []int{50}, LowUsageShare: 0.2, NoJobsDays: 7, SpikeMinJobs: 20, SpikeMinRatio: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Over(DefaultSettings()); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Over = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWebhookValidate(t *testing.T) {
	ok := Webhook{ID: "w1", ResellerID: "r1", URL: "https://hooks.example.com/x", Secret: "s", Rules: []string{RuleQuota}, Enabled: true}
	cases := []struct {
		name  string
		edit  func(*Webhook)
		field string
	}{
		{"valid", func(*Webhook) {}, ""},
		{"http with port", func(w *Webhook) { w.URL = "http://127.0.0.1:8080/hook" }, ""},
		{"bad id", func(w *Webhook) { w.ID = "a.b" }, "id"},
		{"no reseller", func(w *Webhook) { w.ResellerID = "" }, "reseller_id"},
		{"ftp", func(w *Webhook) { w.URL = "ftp://x.example/" }, "url"},
		{"no host", func(w *Webhook) { w.URL = "https:///path" }, "url"},
		{"relative", func(w *Webhook) { w.URL = "/hook" }, "url"},
		{"too long", func(w *Webhook) { w.URL = "https://x.example/" + strings.Repeat("a", 2048) }, "url"},
		{"no secret", func(w *Webhook) { w.Secret = "" }, "secret"},
		{"unknown rule", func(w *Webhook) { w.Rules = []string{"nope"} }, "rules"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := ok
			tc.edit(&w)
			err := w.Validate()
			var we *WebhookError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &we) || we.Field != tc.field):
				t.Fatalf("Validate() = %v, want a WebhookError on %s", err, tc.field)
			}
		})
	}
}

func TestSignature(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte(`{"alert_key":"k"}`)
	sig := Sign("s3cret", at, body)
	cases := []struct {
		name, secret, header string
		body                 []byte
		now                  time.Time
		ok                   bool
	}{
		{"valid", "s3cret", sig, body, at.Add(time.Minute), true},
		{"wrong secret", "other", sig, body, at, false},
		{"tampered body", "s3cret", sig, []byte(`{"alert_key":"x"}`), at, false},
		{"replayed late", "s3cret", sig, body, at.Add(time.Hour), false},
		{"from the future", "s3cret", sig, body, at.Add(-time.Hour), false},
		{"malformed", "s3cret", "v1=abc", body, at, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifySignature(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute); (err == nil) != tc.ok {
				t.Fatalf("VerifySignature = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNewTestAlert(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 500, time.UTC)
	a, err := NewTestAlert("r1", RuleSpike, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewTestAlert("r1", RuleSpike, now)
	cases := []struct{ name, got, want string }{
		{"key", a.Key, AlertKey(RuleSpike, "r1", "", a.Period, TestThreshold)},
		{"period", a.Period[:5], "test-"},
		{"state", a.State, StateTest},
		{"title", a.Title, "Test alert"},
		{"subject", Subject(a.ResellerID, a.Rule), "tally.alerts.r1.usage_spike"},
		{"subject without reseller", Subject("", a.Rule), "tally.alerts._.usage_spike"},
		{"time", a.FirstFiredAt.Format(time.RFC3339Nano), "2026-11-20T12:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	if a.Key == b.Key || a.Details["test"] != true {
		t.Errorf("two test alerts share key %s, or details %v lack test", a.Key, a.Details)
	}
}
