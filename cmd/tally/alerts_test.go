package main

import (
	"slices"
	"testing"
	"time"
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
