package alerts

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tallyhq/tally/alertspec"
)

// TestRuleNamesMatchAlertspec: the rule and state names the stage raises
// are the ones alertspec (and so the query service) knows.
func TestRuleNamesMatchAlertspec(t *testing.T) {
	cases := []struct{ name, got, want string }{
		{"quota", RuleQuota, alertspec.RuleQuota},
		{"low usage", RuleLowUsage, alertspec.RuleLowUsage},
		{"no jobs", RuleNoJobs, alertspec.RuleNoJobs},
		{"payment failed", RulePaymentFailed, alertspec.RulePaymentFailed},
		{"expiring", RuleExpiring, alertspec.RuleExpiring},
		{"expired", RuleExpired, alertspec.RuleExpired},
		{"spike", RuleSpike, alertspec.RuleSpike},
		{"drop", RuleDrop, alertspec.RuleDrop},
		{"failure rate", RuleFailureRate, alertspec.RuleFailureRate},
		{"customer", RuleCustomer, alertspec.RuleCustomer},
		{"notice state", StateNotice, alertspec.StateNotice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("alerts has %q, alertspec %q", tc.got, tc.want)
			}
		})
	}
	if len(ruleNames) != len(cases)-1 {
		t.Errorf("alertspec.Rules has %d rules, want %d", len(ruleNames), len(cases)-1)
	}
	for _, r := range (&Alerts{}).defaultRules() {
		if !slices.Contains(alertspec.Rules, r.name) {
			t.Errorf("rule %s is not in alertspec.Rules", r.name)
		}
	}
}

// TestDefaultsFromAlertspec: the stage's defaults are alertspec's, the
// values the query service shows as defaults.
func TestDefaultsFromAlertspec(t *testing.T) {
	c := DefaultConfig()
	got := alertspec.ResellerSettings{QuotaThresholds: c.QuotaThresholds, LowUsageShare: c.LowUsageShare,
		NoJobsDays: c.NoJobsDays, SpikeMinJobs: c.Spike.MinJobs, SpikeMinRatio: c.Spike.MinRatio}
	if want := alertspec.DefaultSettings(); !reflect.DeepEqual(got, want) {
		t.Fatalf("stage defaults %+v, alertspec defaults %+v", got, want)
	}
}
