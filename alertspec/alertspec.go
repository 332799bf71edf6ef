// Package alertspec is what an alert is, shared by the alerts stage (which
// raises alerts and delivers them to webhooks) and the query service (which
// lists, acknowledges and test-fires them, and edits rule settings and
// webhooks): rule names, per-reseller rule settings and their defaults, the
// alert message published on NATS (tally.alerts.<reseller>.<rule>, stream
// TALLY_ALERTS), webhook records and their HMAC signatures. Stages never
// import each other; both import this package.
package alertspec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Rule names: the last token of an alert's subject.
const (
	RuleQuota         = "quota"
	RuleLowUsage      = "low_usage"
	RuleNoJobs        = "no_jobs"
	RulePaymentFailed = "payment_failed"
	RuleExpiring      = "subscription_expiring"
	RuleExpired       = "subscription_expired"
	RuleSpike         = "usage_spike"
	RuleDrop          = "usage_drop"
	RuleFailureRate   = "failure_rate"
	// RuleCustomer raises customer activity notices (new organizations,
	// subscription changes), not alerts.
	RuleCustomer = "customer_activity"
)

// Rules lists every rule, in the order the API shows them.
var Rules = []string{RuleQuota, RuleLowUsage, RuleNoJobs, RulePaymentFailed, RuleExpiring, RuleExpired,
	RuleSpike, RuleDrop, RuleFailureRate, RuleCustomer}

// Alert states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
	// StateNotice is the state of customer activity notices: facts,
	// neither firing nor resolved.
	StateNotice = "notice"
	// StateTest is the state of a test alert (see NewTestAlert): it never
	// fires nor resolves, so rule evaluation ignores it.
	StateTest = "test"
)

// TestThreshold is the threshold of every test alert's key.
const TestThreshold = "test"

// Stream and subjects of published alerts.
const (
	StreamName    = "TALLY_ALERTS"
	SubjectPrefix = "tally.alerts."
	// DedupWindow covers a replica that published an alert but crashed
	// before recording it: the next evaluation publishes it again under the
	// same Nats-Msg-Id.
	DedupWindow = time.Hour
)

// Alert is one alert as stored in the alerts table and published on
// tally.alerts.<reseller>.<rule>.
type Alert struct {
	Key          string         `json:"alert_key"`
	Rule         string         `json:"rule"`
	ResellerID   string         `json:"reseller_id"`
	OrgID        string         `json:"org_id,omitempty"`
	Period       string         `json:"period"`
	Threshold    string         `json:"threshold,omitempty"`
	State        string         `json:"state"`
	Severity     string         `json:"severity"`
	Title        string         `json:"title"`
	Details      map[string]any `json:"details,omitempty"`
	FirstFiredAt time.Time      `json:"first_fired_at"`
	LastSeenAt   time.Time      `json:"last_seen_at"`
	ResolvedAt   *time.Time     `json:"resolved_at,omitempty"`
	Version      uint64         `json:"version"`
	// WebhookID, when set, limits delivery to that webhook of the reseller
	// (a webhook's test alert), whatever rules the webhook lists.
	WebhookID string `json:"webhook_id,omitempty"`
}

// AlertKey is the stable identity of an alert.
func AlertKey(rule, reseller, org, period, threshold string) string {
	return strings.Join([]string{rule, reseller, org, period, threshold}, "|")
}

// Subject is the NATS subject an alert is published on.
func Subject(reseller, rule string) string {
	if reseller == "" {
		reseller = "_"
	}
	return SubjectPrefix + reseller + "." + rule
}

// EnsureStream creates or updates the TALLY_ALERTS stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "tally alerts: raised and resolved alerts, the delivery queue",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Duplicates:  DedupWindow,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return nil
}

// Publish publishes an alert on its subject with Nats-Msg-Id
// "<alert_key>/<state>", so one state change is delivered once.
func Publish(ctx context.Context, js jetstream.JetStream, al *Alert) error {
	body, err := json.Marshal(al)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	msg := &nats.Msg{Subject: Subject(al.ResellerID, al.Rule), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, al.Key+"/"+al.State)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish alert %s: %w", al.Key, err)
	}
	return nil
}

// NewTestAlert returns a test alert of a reseller's rule: state "test",
// severity "info", title "Test alert", details {"test": true}, a fresh key
// (period "test-<random>", threshold "test") so every test is delivered.
func NewTestAlert(reseller, rule string, now time.Time) (*Alert, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random test alert id: %w", err)
	}
	now = now.UTC().Truncate(time.Second)
	period := "test-" + hex.EncodeToString(b)
	return &Alert{
		Key: AlertKey(rule, reseller, "", period, TestThreshold), Rule: rule, ResellerID: reseller,
		Period: period, Threshold: TestThreshold, State: StateTest, Severity: "info", Title: "Test alert",
		Details:      map[string]any{"test": true},
		FirstFiredAt: now, LastSeenAt: now, Version: uint64(time.Now().UnixNano()),
	}, nil
}
