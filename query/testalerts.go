package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alertspec"
)

const insertAlertSQL = `INSERT INTO alerts (alert_key, rule, reseller_id, org_id, period, threshold, state, severity, title, details, first_fired_at, last_seen_at, resolved_at, version)`

// ensureAlertsStream makes sure TALLY_ALERTS exists before the first test
// alert. An existing stream is left as the alerts stage configured it
// (replicas); a missing one is created with one replica, which the alerts
// stage updates when it starts.
func (q *Query) ensureAlertsStream(ctx context.Context) error {
	q.streamMu.Lock()
	defer q.streamMu.Unlock()
	if q.streamReady {
		return nil
	}
	if _, err := q.js.Stream(ctx, alertspec.StreamName); err != nil {
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", alertspec.StreamName, err)
		}
		if err := alertspec.EnsureStream(ctx, q.js, 1); err != nil {
			return err
		}
	}
	q.streamReady = true
	return nil
}

// fireTestAlert publishes a test alert on NATS (the alerts stage delivers
// it to webhooks) and records it in the alerts table (the feed and
// /v1/alerts show it). Without NATS it is a 503.
func (q *Query) fireTestAlert(c *fiber.Ctx, al *alertspec.Alert) error {
	if q.js == nil {
		return errNoNATS
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	err := q.ensureAlertsStream(ctx)
	if err == nil {
		err = alertspec.Publish(ctx, q.js, al)
	}
	if err != nil {
		q.log.Warn("test alert not published", "alert", al.Key, "err", err)
		return &APIError{Status: fiber.StatusServiceUnavailable, Code: "unavailable",
			Message: "NATS did not accept the test alert: try again later"}
	}
	details, err := json.Marshal(al.Details)
	if err != nil {
		return fmt.Errorf("test alert: %w", err)
	}
	b, err := q.conn.PrepareBatch(c.UserContext(), insertAlertSQL)
	if err != nil {
		return fmt.Errorf("record test alert: %w", err)
	}
	if err := b.Append(al.Key, al.Rule, al.ResellerID, al.OrgID, al.Period, al.Threshold, al.State, al.Severity, al.Title,
		string(details), al.FirstFiredAt, al.LastSeenAt, time.Unix(0, 0).UTC(), al.Version); err != nil {
		_ = b.Abort()
		return fmt.Errorf("record test alert: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record test alert: %w", err)
	}
	return nil
}
