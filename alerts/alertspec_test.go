package alerts

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tallyhq/tally/alertspec"
)

// TestRulesMatchAlertspec: the stage evaluates every rule alertspec (and so
// the query service) knows, and only those.
func TestRulesMatchAlertspec(t *testing.T) {
	var got []string
	for _, r := range (&Alerts{}).defaultRules() {
		if !slices.Contains(alertspec.Rules, r.name) {
			t.Errorf("rule %s is not in alertspec.Rules", r.name)
		}
		got = append(got, r.name)
	}
	for _, r := range alertspec.Rules {
		// Customer activity comes from the event stream, not a scheduled rule.
		if r != RuleCustomer && !slices.Contains(got, r) {
			t.Errorf("alertspec rule %s is never evaluated", r)
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
