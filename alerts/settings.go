package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/alertspec"
)

// ResellerSettings overrides the stage's rule settings for one reseller;
// zero values keep the stage's defaults.
type ResellerSettings = alertspec.ResellerSettings

var ruleNames = alertspec.Rules

const settingsSQL = `SELECT reseller_id, settings FROM alert_settings FINAL ORDER BY reseller_id`

const insertSettingsSQL = `INSERT INTO alert_settings (reseller_id, settings, updated_at, version)`

// SaveSettings stores a reseller's rule settings.
func SaveSettings(ctx context.Context, conn driver.Conn, reseller string, s ResellerSettings) error {
	if !validBucket(reseller) {
		return fmt.Errorf("settings: reseller %q: want [A-Za-z0-9_-]", reseller)
	}
	if err := s.Validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	b, err := conn.PrepareBatch(ctx, insertSettingsSQL)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	now := time.Now().UTC()
	if err := b.Append(reseller, string(raw), now.Truncate(time.Second), uint64(now.UnixNano())); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// settings are the stage's defaults with each reseller's overrides.
type settings struct {
	base       Config
	byReseller map[string]ResellerSettings
}

func (a *Alerts) loadSettings(ctx context.Context) (settings, error) {
	s := settings{base: a.cfg, byReseller: map[string]ResellerSettings{}}
	rows, err := a.conn.Query(ctx, settingsSQL)
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var reseller, raw string
		if err := rows.Scan(&reseller, &raw); err != nil {
			return s, fmt.Errorf("settings: %w", err)
		}
		var rs ResellerSettings
		if err := json.Unmarshal([]byte(raw), &rs); err != nil || rs.Validate() != nil {
			a.log.Warn("settings: invalid, defaults apply", "reseller", reseller, "err", errors.Join(err, rs.Validate()))
			continue
		}
		s.byReseller[reseller] = rs
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	return s, nil
}

// of returns the configuration that applies to a reseller: its overrides
// over the stage's configuration, by alertspec's rules (ResellerSettings.Over).
func (s settings) of(reseller string) Config {
	c := s.base
	rs, ok := s.byReseller[reseller]
	if !ok {
		return c
	}
	eff := rs.Over(ResellerSettings{QuotaThresholds: c.QuotaThresholds, LowUsageShare: c.LowUsageShare,
		NoJobsDays: c.NoJobsDays, SpikeMinJobs: c.Spike.MinJobs, SpikeMinRatio: c.Spike.MinRatio})
	c.QuotaThresholds, c.LowUsageShare, c.NoJobsDays = eff.QuotaThresholds, eff.LowUsageShare, eff.NoJobsDays
	c.Spike.MinJobs, c.Spike.MinRatio = eff.SpikeMinJobs, eff.SpikeMinRatio
	return c
}

func (s settings) disabled(reseller, rule string) bool {
	return slices.Contains(s.byReseller[reseller].DisabledRules, rule)
}

// enabledOnly drops findings of resellers that disabled the rule.
func (s settings) enabledOnly(rule string, found []Alert) []Alert {
	return slices.DeleteFunc(found, func(al Alert) bool { return s.disabled(al.ResellerID, rule) })
}
