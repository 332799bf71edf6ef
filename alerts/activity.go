package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// StateNotice is the state of customer activity notifications (see
// alertspec.StateNotice).
const StateNotice = alertspec.StateNotice

// activitySubjects are the customer activity events turned into
// notifications.
var activitySubjects = []string{
	stream.EventsPrefix + "*.*.organization.created",
	stream.EventsPrefix + "*.*.subscription.changed",
}

// runActivity consumes customer activity from TALLY_EVENTS through a
// durable consumer shared by every replica (each event reaches one), and
// records and publishes a notification per event. A redelivered event keeps
// its alert_key (the event id) and Nats-Msg-Id, so it is not notified twice.
func (a *Alerts) runActivity(ctx context.Context) error {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = a.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{
			Durable:        a.cfg.ActivityConsumer,
			Description:    "tally alerts: customer activity notifications",
			FilterSubjects: activitySubjects,
			DeliverPolicy:  jetstream.DeliverNewPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        30 * time.Second,
			MaxDeliver:     -1,
		})
		if err == nil {
			break
		}
		a.log.Warn("activity consumer (retrying)", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if err := a.handleActivity(ctx, msg); err != nil {
			a.log.Warn("activity notification", "subject", msg.Subject(), "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	})
	if err != nil {
		return fmt.Errorf("consume activity: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (a *Alerts) handleActivity(ctx context.Context, msg jetstream.Msg) error {
	ev, err := schemas.Decode(msg.Data())
	if err != nil {
		a.log.Warn("activity: undecodable event skipped", "subject", msg.Subject(), "err", err)
		return nil
	}
	al, ok := activityAlert(ev)
	if !ok {
		return nil
	}
	st, err := a.loadSettings(ctx)
	if err != nil {
		return err
	}
	if st.disabled(al.ResellerID, RuleCustomer) {
		return nil
	}
	al.Version = uint64(time.Now().UnixNano())
	if err := a.publish(ctx, al); err != nil {
		return err
	}
	return a.insert(ctx, []*Alert{al})
}

// activityAlert turns an organization.created or subscription.changed
// event into a notification keyed by the event id.
func activityAlert(ev *schemas.Event) (*Alert, bool) {
	al := &Alert{Rule: RuleCustomer, ResellerID: ev.ResellerID, OrgID: ev.OrgID, Period: ev.ID, State: StateNotice,
		Severity: "info", FirstFiredAt: ev.Time.UTC().Truncate(time.Second), LastSeenAt: ev.Time.UTC().Truncate(time.Second)}
	switch ev.Type {
	case "organization.created":
		d, err := ev.OrganizationData()
		if err != nil {
			return nil, false
		}
		al.Threshold = "organization.created"
		al.Title = fmt.Sprintf("New organization %s on plan %s (%s)", d.Name, d.Plan, d.Status)
		al.Details = map[string]any{"event_id": ev.ID, "type": ev.Type, "name": d.Name, "plan": d.Plan, "status": d.Status}
	case "subscription.changed":
		d, err := ev.SubscriptionData()
		if err != nil {
			return nil, false
		}
		al.Threshold = "subscription.changed"
		al.Title = fmt.Sprintf("Subscription changed: plan %s, %s", d.Plan, strings.ReplaceAll(d.Status, "_", " "))
		if d.Status == "past_due" || d.Status == "canceled" || d.Status == "expired" {
			al.Severity = "warning"
		}
		al.Details = map[string]any{"event_id": ev.ID, "type": ev.Type, "plan": d.Plan, "status": d.Status,
			"quota_minutes": d.QuotaMinutes, "price_minor": d.PriceMinor, "currency": d.Currency}
	default:
		return nil, false
	}
	al.Key = AlertKey(al.Rule, al.ResellerID, al.OrgID, al.Period, al.Threshold)
	return al, true
}
