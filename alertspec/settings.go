package alertspec

import (
	"fmt"
	"slices"
)

// ResellerSettings overrides the alerts stage's rule settings for one
// reseller (the alert_settings table); zero values keep the defaults.
type ResellerSettings struct {
	// DisabledRules are rules that raise nothing for the reseller (their
	// firing alerts resolve).
	DisabledRules   []string `json:"disabled_rules,omitempty"`
	QuotaThresholds []int    `json:"quota_thresholds,omitempty"`
	LowUsageShare   float64  `json:"low_usage_share,omitempty"`
	NoJobsDays      int      `json:"no_jobs_days,omitempty"`
	SpikeMinJobs    int      `json:"spike_min_jobs,omitempty"`
	SpikeMinRatio   float64  `json:"spike_min_ratio,omitempty"`
}

// RuleSettings names the settings (ResellerSettings JSON fields) each rule
// reads. spike_min_jobs is shared: the volume floor of spikes and drops.
var RuleSettings = map[string][]string{
	RuleQuota:    {"quota_thresholds"},
	RuleLowUsage: {"low_usage_share"},
	RuleNoJobs:   {"no_jobs_days"},
	RuleSpike:    {"spike_min_jobs", "spike_min_ratio"},
	RuleDrop:     {"spike_min_jobs"},
}

// DefaultSettings returns the alerts stage's default rule settings, every
// field set. The stage's Config defaults are these values.
func DefaultSettings() ResellerSettings {
	return ResellerSettings{QuotaThresholds: []int{80, 90, 100}, LowUsageShare: 0.2, NoJobsDays: 7, SpikeMinJobs: 20, SpikeMinRatio: 3}
}

// SettingError is an invalid setting: Field is its JSON name.
type SettingError struct {
	Field, Reason string
}

// Error returns "settings: <field>: <reason>".
func (e *SettingError) Error() string { return "settings: " + e.Field + ": " + e.Reason }

// Validate reports the first invalid override as a *SettingError.
func (s ResellerSettings) Validate() error {
	for _, r := range s.DisabledRules {
		if !slices.Contains(Rules, r) {
			return &SettingError{"disabled_rules", fmt.Sprintf("unknown rule %q", r)}
		}
	}
	if len(s.QuotaThresholds) > 20 {
		return &SettingError{"quota_thresholds", "at most 20 thresholds"}
	}
	for _, t := range s.QuotaThresholds {
		if t < 1 || t > 1000 {
			return &SettingError{"quota_thresholds", fmt.Sprintf("threshold %d%%: want 1..1000", t)}
		}
	}
	switch {
	case s.LowUsageShare < 0 || s.LowUsageShare > 1:
		return &SettingError{"low_usage_share", "must be within 0..1"}
	case s.NoJobsDays < 0 || s.NoJobsDays > 366:
		return &SettingError{"no_jobs_days", "must be within 1..366"}
	case s.SpikeMinJobs < 0:
		return &SettingError{"spike_min_jobs", "must not be negative"}
	case s.SpikeMinRatio != 0 && s.SpikeMinRatio <= 1:
		return &SettingError{"spike_min_ratio", "must be above 1"}
	}
	return nil
}

// Over returns the settings s overrides on base: base's values where s
// keeps the default, s's DisabledRules.
func (s ResellerSettings) Over(base ResellerSettings) ResellerSettings {
	out := base
	out.DisabledRules = s.DisabledRules
	if len(s.QuotaThresholds) > 0 {
		out.QuotaThresholds = s.QuotaThresholds
	}
	if s.LowUsageShare > 0 {
		out.LowUsageShare = s.LowUsageShare
	}
	if s.NoJobsDays > 0 {
		out.NoJobsDays = s.NoJobsDays
	}
	if s.SpikeMinJobs > 0 {
		out.SpikeMinJobs = s.SpikeMinJobs
	}
	if s.SpikeMinRatio > 0 {
		out.SpikeMinRatio = s.SpikeMinRatio
	}
	return out
}

// Disabled reports whether the settings disable rule.
func (s ResellerSettings) Disabled(rule string) bool { return slices.Contains(s.DisabledRules, rule) }
