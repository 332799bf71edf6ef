package query

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tallyhq/tally/alertspec"
)

// alertSettingsSQL reads a reseller's rule settings (alert_settings, the
// overrides of the alerts stage's defaults). Args: reseller.
const alertSettingsSQL = `SELECT settings FROM alert_settings FINAL WHERE reseller_id = ?`

const insertAlertSettingsSQL = `INSERT INTO alert_settings (reseller_id, settings, updated_at, version)`

// ruleItem is one rule as the API shows it: enabled, its effective
// settings, the defaults, and whether the reseller overrides any of it.
type ruleItem struct {
	Rule       string         `json:"rule"`
	Enabled    bool           `json:"enabled"`
	Settings   map[string]any `json:"settings"`
	Defaults   map[string]any `json:"defaults"`
	Overridden bool           `json:"overridden"`
}

type rulesResponse struct {
	Rules []ruleItem `json:"rules"`
}

// ruleRequest is the body of POST /v1/alert-rules (with rule) and
// PUT /v1/alert-rules/{rule}. Left out, enabled and settings keep their
// current values; settings given replace the rule's settings (a setting
// left out of it is back to its default).
type ruleRequest struct {
	Rule     string                     `json:"rule,omitempty"`
	Enabled  *bool                      `json:"enabled"`
	Settings map[string]json.RawMessage `json:"settings"`
}

// settingsMap renders the settings named fields of s as a JSON object.
func settingsMap(s alertspec.ResellerSettings, fields []string) map[string]any {
	raw, _ := json.Marshal(s)
	var all map[string]any
	_ = json.Unmarshal(raw, &all)
	out := map[string]any{}
	for _, f := range fields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out
}

func ruleView(rule string, rs alertspec.ResellerSettings) ruleItem {
	fields := alertspec.RuleSettings[rule]
	own := settingsMap(rs, fields)
	return ruleItem{
		Rule: rule, Enabled: !rs.Disabled(rule),
		Settings:   settingsMap(rs.Over(alertspec.DefaultSettings()), fields),
		Defaults:   settingsMap(alertspec.DefaultSettings(), fields),
		Overridden: rs.Disabled(rule) || len(own) > 0,
	}
}

// readSettings returns the reseller's overrides (none if unset or invalid).
func (q *Query) readSettings(c *fiber.Ctx, reseller string) (alertspec.ResellerSettings, error) {
	var raw string
	var rs alertspec.ResellerSettings
	err := q.conn.QueryRow(c.UserContext(), alertSettingsSQL, reseller).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return rs, nil
	case err != nil:
		return rs, fmt.Errorf("alert settings: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &rs); err != nil || rs.Validate() != nil {
		q.log.Warn("alert settings invalid: defaults shown", "reseller", reseller, "err", errors.Join(err, rs.Validate()))
		return alertspec.ResellerSettings{}, nil
	}
	return rs, nil
}

func (q *Query) saveSettings(c *fiber.Ctx, reseller string, rs alertspec.ResellerSettings) error {
	raw, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("alert settings: %w", err)
	}
	b, err := q.conn.PrepareBatch(c.UserContext(), insertAlertSettingsSQL)
	if err != nil {
		return fmt.Errorf("save alert settings: %w", err)
	}
	if err := b.Append(reseller, string(raw), q.now().UTC(), uint64(time.Now().UnixNano())); err != nil {
		_ = b.Abort()
		return fmt.Errorf("save alert settings: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save alert settings: %w", err)
	}
	return nil
}

// alertRules lists every rule with its effective settings.
func (q *Query) alertRules(c *fiber.Ctx) error {
	s := scopeOf(c)
	rs, err := q.readSettings(c, s.reseller)
	if err != nil {
		return err
	}
	resp := rulesResponse{Rules: make([]ruleItem, 0, len(alertspec.Rules))}
	for _, r := range alertspec.Rules {
		resp.Rules = append(resp.Rules, ruleView(r, rs))
	}
	return c.JSON(resp)
}

// ruleParam is the {rule} of the path: an unknown rule is a 404.
func ruleParam(c *fiber.Ctx) (string, error) {
	r := c.Params("rule")
	if !slices.Contains(alertspec.Rules, r) {
		return "", notFound("alert rule")
	}
	return r, nil
}

// clearRule removes the rule's overrides from rs: enabled, its settings
// at their defaults.
func clearRule(rs alertspec.ResellerSettings, rule string) alertspec.ResellerSettings {
	rs.DisabledRules = slices.DeleteFunc(slices.Clone(rs.DisabledRules), func(r string) bool { return r == rule })
	for _, f := range alertspec.RuleSettings[rule] {
		switch f {
		case "quota_thresholds":
			rs.QuotaThresholds = nil
		case "low_usage_share":
			rs.LowUsageShare = 0
		case "no_jobs_days":
			rs.NoJobsDays = 0
		case "spike_min_jobs":
			rs.SpikeMinJobs = 0
		case "spike_min_ratio":
			rs.SpikeMinRatio = 0
		}
	}
	return rs
}

// applyRule applies a request to the reseller's settings of one rule.
func applyRule(rs alertspec.ResellerSettings, rule string, req ruleRequest) (alertspec.ResellerSettings, error) {
	fields := alertspec.RuleSettings[rule]
	if req.Settings != nil {
		for k, v := range req.Settings {
			if !slices.Contains(fields, k) {
				if len(fields) == 0 {
					return rs, badBody("settings."+k, "rule %s has no settings", rule)
				}
				return rs, badBody("settings."+k, "rule %s has no setting %q: its settings are %s", rule, k, strings.Join(fields, ", "))
			}
			if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				return rs, badBody("settings."+k, "settings.%s: want a value (leave it out for the default)", k)
			}
		}
		raw, _ := json.Marshal(req.Settings)
		var given alertspec.ResellerSettings
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&given); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				return rs, badBody("settings."+typeErr.Field, "settings.%s: want a JSON %s", typeErr.Field, typeErr.Type.Kind())
			}
			return rs, badBody("settings", "invalid settings: %v", err)
		}
		// Zero is "the default" in stored settings: refuse it rather than
		// silently store a default.
		for k := range req.Settings {
			zero := false
			switch k {
			case "quota_thresholds":
				zero = len(given.QuotaThresholds) == 0
			case "low_usage_share":
				zero = given.LowUsageShare == 0
			case "no_jobs_days":
				zero = given.NoJobsDays == 0
			case "spike_min_jobs":
				zero = given.SpikeMinJobs == 0
			case "spike_min_ratio":
				zero = given.SpikeMinRatio == 0
			}
			if zero {
				return rs, badBody("settings."+k, "settings.%s must not be zero or empty: disable the rule with \"enabled\": false instead", k)
			}
		}
		disabled := rs.DisabledRules
		rs = clearRule(rs, rule)
		rs.DisabledRules = disabled
		rs = given.Over(rs)
		rs.DisabledRules = disabled
	}
	if req.Enabled != nil {
		rs.DisabledRules = slices.DeleteFunc(slices.Clone(rs.DisabledRules), func(r string) bool { return r == rule })
		if !*req.Enabled {
			rs.DisabledRules = append(rs.DisabledRules, rule)
		}
	}
	var se *alertspec.SettingError
	if err := rs.Validate(); errors.As(err, &se) {
		return rs, badBody("settings."+se.Field, "settings.%s: %s", se.Field, se.Reason)
	} else if err != nil {
		return rs, badBody("settings", "%v", err)
	}
	return rs, nil
}

// createAlertRule creates the override of a rule the reseller does not
// override yet (409 if it does).
func (q *Query) createAlertRule(c *fiber.Ctx) error {
	s := scopeOf(c)
	var req ruleRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if !slices.Contains(alertspec.Rules, req.Rule) {
		return badBody("rule", "unknown rule %q: want one of %s", req.Rule, strings.Join(alertspec.Rules, ", "))
	}
	rs, err := q.readSettings(c, s.reseller)
	if err != nil {
		return err
	}
	if ruleView(req.Rule, rs).Overridden {
		return &APIError{Status: fiber.StatusConflict, Code: "conflict", Param: "rule",
			Message: fmt.Sprintf("rule %s is already overridden: change it with PUT /v1/alert-rules/%s", req.Rule, req.Rule)}
	}
	if rs, err = applyRule(rs, req.Rule, req); err != nil {
		return err
	}
	if err := q.saveSettings(c, s.reseller, rs); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(ruleView(req.Rule, rs))
}

// putAlertRule creates or replaces the reseller's override of a rule.
func (q *Query) putAlertRule(c *fiber.Ctx) error {
	s := scopeOf(c)
	rule, err := ruleParam(c)
	if err != nil {
		return err
	}
	var req ruleRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Rule != "" && req.Rule != rule {
		return badBody("rule", "rule %q differs from the path's %q", req.Rule, rule)
	}
	rs, err := q.readSettings(c, s.reseller)
	if err != nil {
		return err
	}
	if rs, err = applyRule(rs, rule, req); err != nil {
		return err
	}
	if err := q.saveSettings(c, s.reseller, rs); err != nil {
		return err
	}
	return c.JSON(ruleView(rule, rs))
}

// deleteAlertRule puts a rule back to the defaults (enabled, default
// settings). spike_min_jobs is shared by usage_spike and usage_drop.
func (q *Query) deleteAlertRule(c *fiber.Ctx) error {
	s := scopeOf(c)
	rule, err := ruleParam(c)
	if err != nil {
		return err
	}
	rs, err := q.readSettings(c, s.reseller)
	if err != nil {
		return err
	}
	if ruleView(rule, rs).Overridden {
		rs = clearRule(rs, rule)
		if err := q.saveSettings(c, s.reseller, rs); err != nil {
			return err
		}
	}
	return c.JSON(ruleView(rule, rs))
}

type testAlertResponse struct {
	AlertKey string `json:"alert_key"`
}

// testAlertRule publishes a test alert of the rule: the alerts stage
// delivers it to the reseller's webhooks of that rule, and it shows in the
// feed and in /v1/alerts with state "test".
func (q *Query) testAlertRule(c *fiber.Ctx) error {
	s := scopeOf(c)
	rule, err := ruleParam(c)
	if err != nil {
		return err
	}
	al, err := alertspec.NewTestAlert(s.reseller, rule, q.now())
	if err != nil {
		return err
	}
	if err := q.fireTestAlert(c, al); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(testAlertResponse{AlertKey: al.Key})
}
