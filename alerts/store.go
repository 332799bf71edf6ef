package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alertspec"
)

// Alert states.
const (
	StateFiring   = alertspec.StateFiring
	StateResolved = alertspec.StateResolved
)

// Stream and subjects of published alerts.
const (
	StreamName    = alertspec.StreamName
	SubjectPrefix = alertspec.SubjectPrefix
	// lastSeenRefresh is how often a firing alert's last_seen_at (and its
	// title and details) is rewritten while it keeps firing.
	lastSeenRefresh = 15 * time.Minute
)

// Alert is one alert as stored in the alerts table and published on
// tally.alerts.<reseller>.<rule>.
type Alert = alertspec.Alert

// AlertKey is the stable identity of an alert (alertspec.AlertKey).
func AlertKey(rule, reseller, org, period, threshold string) string {
	return alertspec.AlertKey(rule, reseller, org, period, threshold)
}

// Subject is the NATS subject an alert is published on (alertspec.Subject).
func Subject(reseller, rule string) string { return alertspec.Subject(reseller, rule) }

// EnsureStream creates or updates the TALLY_ALERTS stream
// (alertspec.EnsureStream).
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return alertspec.EnsureStream(ctx, js, replicas)
}

// storedAlertsSQL reads the latest state of a rule's alerts that are firing
// or whose keys are given. argMax rather than FINAL: WHERE on a non-key
// column may be applied before FINAL collapses rows.
const storedAlertsSQL = `SELECT alert_key,
    argMax(reseller_id, version) AS a_reseller, argMax(org_id, version) AS a_org,
    argMax(period, version) AS a_period, argMax(threshold, version) AS a_threshold,
    argMax(state, version) AS a_state, argMax(severity, version) AS a_severity,
    argMax(title, version) AS a_title, argMax(details, version) AS a_details,
    argMax(first_fired_at, version) AS a_first, argMax(last_seen_at, version) AS a_last,
    max(version) AS a_version
FROM alerts
WHERE rule = ?
GROUP BY alert_key
HAVING a_state = 'firing' OR alert_key IN (SELECT arrayJoin(?))
ORDER BY alert_key`

const insertAlertsSQL = `INSERT INTO alerts (alert_key, rule, reseller_id, org_id, period, threshold, state, severity, title, details, first_fired_at, last_seen_at, resolved_at, version)`

func (a *Alerts) storedAlerts(ctx context.Context, rule string, keys []string) (map[string]*Alert, error) {
	if len(keys) == 0 {
		keys = []string{""} // an empty array is Array(Nothing): IN fails on 18.16
	}
	rows, err := a.conn.Query(ctx, storedAlertsSQL, rule, keys)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	out := map[string]*Alert{}
	for rows.Next() {
		al := &Alert{Rule: rule}
		var details string
		if err := rows.Scan(&al.Key, &al.ResellerID, &al.OrgID, &al.Period, &al.Threshold, &al.State, &al.Severity,
			&al.Title, &details, &al.FirstFiredAt, &al.LastSeenAt, &al.Version); err != nil {
			return nil, fmt.Errorf("read alerts: %w", err)
		}
		if details != "" {
			_ = json.Unmarshal([]byte(details), &al.Details)
		}
		out[al.Key] = al
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// reconcile makes the alerts table and the stream agree with what a rule
// found now: a finding whose key was never raised is raised; a firing alert
// not found any more is resolved. A key raised once (even if resolved since)
// never fires again: that is what makes "each threshold once per period".
func (a *Alerts) reconcile(ctx context.Context, rule string, now time.Time, found []Alert) error {
	keys := make([]string, 0, len(found))
	seen := map[string]bool{}
	for i := range found {
		f := &found[i]
		f.Rule = rule
		f.Key = AlertKey(rule, f.ResellerID, f.OrgID, f.Period, f.Threshold)
		keys = append(keys, f.Key)
		seen[f.Key] = true
	}
	stored, err := a.storedAlerts(ctx, rule, keys)
	if err != nil {
		return err
	}
	var changed []*Alert
	now = now.Truncate(time.Second)
	var refreshed []*Alert
	for i := range found {
		f := &found[i]
		if old := stored[f.Key]; old != nil {
			if old.State == StateFiring && now.Sub(old.LastSeenAt) >= lastSeenRefresh {
				// Still firing: record that it was seen, with fresh numbers,
				// without publishing anything.
				f.State, f.FirstFiredAt, f.LastSeenAt, f.Version = StateFiring, old.FirstFiredAt, now, old.Version
				refreshed = append(refreshed, f)
			}
			continue
		}
		stored[f.Key] = f
		f.State, f.FirstFiredAt, f.LastSeenAt = StateFiring, now, now
		changed = append(changed, f)
	}
	for _, s := range stored {
		if s.State == StateFiring && !seen[s.Key] {
			s.State, s.LastSeenAt = StateResolved, now
			t := now
			s.ResolvedAt = &t
			changed = append(changed, s)
		}
	}
	if len(changed)+len(refreshed) == 0 {
		return nil
	}
	for _, al := range changed {
		al.Version = max(uint64(time.Now().UnixNano()), al.Version+1)
		if err := a.publish(ctx, al); err != nil {
			return err
		}
	}
	for _, al := range refreshed {
		al.Version = max(uint64(time.Now().UnixNano()), al.Version+1)
	}
	if err := a.insert(ctx, append(changed, refreshed...)); err != nil {
		return err
	}
	for _, al := range changed {
		a.log.Info("alert", "state", al.State, "key", al.Key, "title", al.Title)
	}
	return nil
}

func (a *Alerts) publish(ctx context.Context, al *Alert) error {
	return alertspec.Publish(ctx, a.js, al)
}

func (a *Alerts) insert(ctx context.Context, list []*Alert) error {
	b, err := a.conn.PrepareBatch(ctx, insertAlertsSQL)
	if err != nil {
		return fmt.Errorf("insert alerts: %w", err)
	}
	for _, al := range list {
		details := "{}"
		if len(al.Details) > 0 {
			raw, err := json.Marshal(al.Details)
			if err != nil {
				return fmt.Errorf("encode alert details: %w", err)
			}
			details = string(raw)
		}
		resolved := time.Unix(0, 0).UTC()
		if al.ResolvedAt != nil {
			resolved = *al.ResolvedAt
		}
		if err := b.Append(al.Key, al.Rule, al.ResellerID, al.OrgID, al.Period, al.Threshold, al.State, al.Severity,
			al.Title, details, al.FirstFiredAt, al.LastSeenAt, resolved, al.Version); err != nil {
			return fmt.Errorf("insert alerts: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert alerts: %w", err)
	}
	return nil
}
