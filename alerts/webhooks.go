package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/stream"
)

// Webhook headers.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of secret
	// over "<t>.<body>">".
	HeaderSignature = alertspec.HeaderSignature
	// HeaderDeliveryID identifies one alert change for one webhook: the
	// same on every retry, so a receiver can drop repeats.
	HeaderDeliveryID = alertspec.HeaderDeliveryID
	// WebhookDeadLetterCode is the dead-letter reason code (tally.dlq.<code>)
	// of an alert whose last delivery attempt failed.
	WebhookDeadLetterCode = "webhook_failed"
	// HeaderWebhookID names the webhook on a dead letter.
	HeaderWebhookID = "Tally-Webhook-Id"
)

// WebhookConfig configures webhook delivery.
type WebhookConfig struct {
	// Consumer is the durable consumer on TALLY_ALERTS shared by replicas;
	// empty disables webhooks.
	Consumer string
	// Timeout of one HTTP call.
	Timeout time.Duration
	// MaxAttempts: after this many failed attempts an alert is dead-lettered.
	MaxAttempts int
	// BaseDelay and MaxDelay bound the exponential backoff (with jitter)
	// between attempts.
	BaseDelay, MaxDelay time.Duration
	// CacheTTL is how long the webhook list is cached.
	CacheTTL time.Duration
}

// DefaultWebhookConfig returns the webhook delivery defaults.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{Consumer: "tally-alerts-webhooks", Timeout: 10 * time.Second, MaxAttempts: 8,
		BaseDelay: time.Second, MaxDelay: 10 * time.Minute, CacheTTL: 30 * time.Second}
}

func (c WebhookConfig) validate() error {
	if c.Consumer == "" {
		return nil
	}
	switch {
	case !validBucket(c.Consumer):
		return fmt.Errorf("alerts: webhook consumer %q: want letters, digits, - and _", c.Consumer)
	case c.Timeout <= 0 || c.MaxAttempts < 1 || c.BaseDelay <= 0 || c.MaxDelay < c.BaseDelay || c.CacheTTL < 0:
		return errors.New("alerts: webhooks: timeout and base delay positive, max attempts at least 1, max delay at least base delay")
	}
	return nil
}

// Webhook is a reseller's alert webhook.
type Webhook = alertspec.Webhook

const insertWebhookSQL = `INSERT INTO alert_webhooks (webhook_id, reseller_id, url, secret, rules, enabled, updated_at, version)`

// webhooksSQL: enabled webhooks of a reseller. Args: reseller.
const webhooksSQL = `SELECT webhook_id, url, secret, rules
FROM (SELECT webhook_id, reseller_id, url, secret, rules, enabled FROM alert_webhooks FINAL WHERE reseller_id = ?)
WHERE enabled = 1
ORDER BY webhook_id`

// deliveredSQL counts successful deliveries of a delivery id. Args:
// reseller, delivery id.
const deliveredSQL = `SELECT count() FROM alert_deliveries WHERE reseller_id = ? AND delivery_id = ? AND outcome = 'delivered'`

const insertDeliverySQL = `INSERT INTO alert_deliveries (delivery_id, webhook_id, reseller_id, alert_key, state, url, attempt, outcome, status_code, error, duration_ms, at)`

// SaveWebhook creates or replaces a webhook.
func SaveWebhook(ctx context.Context, conn driver.Conn, w Webhook) error {
	if err := w.Validate(); err != nil {
		return err
	}
	b, err := conn.PrepareBatch(ctx, insertWebhookSQL)
	if err != nil {
		return fmt.Errorf("save webhook: %w", err)
	}
	rules := w.Rules
	if rules == nil {
		rules = []string{}
	}
	now := time.Now().UTC()
	var enabled uint8
	if w.Enabled {
		enabled = 1
	}
	if err := b.Append(w.ID, w.ResellerID, w.URL, w.Secret, rules, enabled, now.Truncate(time.Second), uint64(now.UnixNano())); err != nil {
		return fmt.Errorf("save webhook: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save webhook: %w", err)
	}
	return nil
}

// backoff is the delay before attempt n+1 after n failed attempts:
// exponential from base, capped at max, with full jitter in [d/2, d].
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

type webhookCache struct {
	mu   sync.Mutex
	byID map[string]cachedHooks
}

type cachedHooks struct {
	at    time.Time
	hooks []Webhook
}

// webhooks returns a reseller's enabled webhooks, cached for CacheTTL
// unless fresh.
func (a *Alerts) webhooks(ctx context.Context, reseller string, fresh bool) ([]Webhook, error) {
	a.hooks.mu.Lock()
	c, ok := a.hooks.byID[reseller]
	a.hooks.mu.Unlock()
	if ok && !fresh && time.Since(c.at) < a.cfg.Webhooks.CacheTTL {
		return c.hooks, nil
	}
	rows, err := a.conn.Query(ctx, webhooksSQL, reseller)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var hooks []Webhook
	for rows.Next() {
		w := Webhook{ResellerID: reseller, Enabled: true}
		if err := rows.Scan(&w.ID, &w.URL, &w.Secret, &w.Rules); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		hooks = append(hooks, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	a.hooks.mu.Lock()
	if a.hooks.byID == nil {
		a.hooks.byID = map[string]cachedHooks{}
	}
	a.hooks.byID[reseller] = cachedHooks{at: time.Now(), hooks: hooks}
	a.hooks.mu.Unlock()
	return hooks, nil
}

// ensureWebhookConsumer creates the delivery consumer. It delivers alerts
// published from its creation on; Setup runs it before the first
// evaluation so none is missed.
func (a *Alerts) ensureWebhookConsumer(ctx context.Context) (jetstream.Consumer, error) {
	wc := a.cfg.Webhooks
	cons, err := a.js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       wc.Consumer,
		Description:   "tally alerts: webhook delivery",
		FilterSubject: SubjectPrefix + "*.*",
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2*wc.Timeout + 30*time.Second,
		MaxDeliver:    -1,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook consumer: %w", err)
	}
	return cons, nil
}

// runWebhooks delivers every alert of TALLY_ALERTS to its reseller's
// webhooks until ctx ends.
func (a *Alerts) runWebhooks(ctx context.Context) error {
	cons, err := a.ensureWebhookConsumer(ctx)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: a.cfg.Webhooks.Timeout}
	cc, err := cons.Consume(func(msg jetstream.Msg) { a.deliver(ctx, client, msg) })
	if err != nil {
		return fmt.Errorf("consume alerts: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

type delivery struct {
	id, webhook, reseller, key, state, url, outcome, err string
	attempt                                              uint32
	status                                               uint16
	duration                                             time.Duration
	at                                                   time.Time
}

// deliver sends one alert to each matching webhook (only to Alert.WebhookID
// when set: a webhook's test alert). A webhook that already took this alert
// (a retry after another webhook failed) is skipped.
func (a *Alerts) deliver(ctx context.Context, client *http.Client, msg jetstream.Msg) {
	wc := a.cfg.Webhooks
	var al Alert
	if err := json.Unmarshal(msg.Data(), &al); err != nil {
		a.log.Warn("webhook: undecodable alert skipped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	hooks, err := a.webhooks(ctx, al.ResellerID, false)
	if err == nil && al.WebhookID != "" && !slices.ContainsFunc(hooks, func(h Webhook) bool { return h.ID == al.WebhookID }) {
		// A webhook tested right after it was saved may not be cached yet.
		hooks, err = a.webhooks(ctx, al.ResellerID, true)
	}
	if err != nil {
		a.log.Warn("webhook", "err", err)
		_ = msg.NakWithDelay(backoff(int(attempt), wc.BaseDelay, wc.MaxDelay))
		return
	}
	msgID := msg.Headers().Get(jetstream.MsgIDHeader)
	var logs []delivery
	var failed []delivery
	for _, h := range hooks {
		switch {
		case al.WebhookID != "" && h.ID != al.WebhookID:
			continue
		case al.WebhookID == "" && len(h.Rules) > 0 && !slices.Contains(h.Rules, al.Rule):
			continue
		}
		id := h.ID + ":" + msgID
		if attempt > 1 {
			var n uint64
			if err := a.conn.QueryRow(ctx, deliveredSQL, al.ResellerID, id).Scan(&n); err != nil {
				a.log.Warn("webhook: delivery log", "err", err)
				_ = msg.NakWithDelay(backoff(int(attempt), wc.BaseDelay, wc.MaxDelay))
				return
			}
			if n > 0 {
				continue
			}
		}
		d := a.post(ctx, client, h, id, msg.Data())
		d.reseller, d.key, d.state, d.attempt = al.ResellerID, al.Key, al.State, uint32(attempt)
		if d.outcome != "delivered" {
			if int(attempt) >= wc.MaxAttempts {
				d.outcome = "dead"
			}
			failed = append(failed, d)
		}
		logs = append(logs, d)
	}
	if len(logs) > 0 {
		if err := a.logDeliveries(ctx, logs); err != nil {
			a.log.Warn("webhook: delivery log", "err", err)
		}
	}
	switch {
	case len(failed) == 0:
		_ = msg.Ack()
	case int(attempt) >= wc.MaxAttempts:
		for _, d := range failed {
			if err := a.deadLetter(ctx, msg, d); err != nil {
				a.log.Warn("webhook: dead letter", "err", err)
				_ = msg.NakWithDelay(wc.MaxDelay)
				return
			}
			a.log.Warn("webhook: dead-lettered after last attempt", "webhook", d.webhook, "alert", al.Key, "err", d.err)
		}
		_ = msg.Ack()
	default:
		_ = msg.NakWithDelay(backoff(int(attempt), wc.BaseDelay, wc.MaxDelay))
	}
}

func (a *Alerts) post(ctx context.Context, client *http.Client, h Webhook, deliveryID string, body []byte) delivery {
	start := time.Now()
	d := delivery{id: deliveryID, webhook: h.ID, url: h.URL, outcome: "failed", at: start.UTC().Truncate(time.Second)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		d.err = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tally-alerts")
	req.Header.Set(HeaderDeliveryID, deliveryID)
	req.Header.Set(HeaderSignature, alertspec.Sign(h.Secret, start, body))
	resp, err := client.Do(req)
	d.duration = time.Since(start)
	if err != nil {
		d.err = err.Error()
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	d.status = uint16(resp.StatusCode)
	if resp.StatusCode/100 == 2 {
		d.outcome = "delivered"
	} else {
		d.err = resp.Status
	}
	return d
}

func (a *Alerts) logDeliveries(ctx context.Context, ds []delivery) error {
	b, err := a.conn.PrepareBatch(ctx, insertDeliverySQL)
	if err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	for _, d := range ds {
		if err := b.Append(d.id, d.webhook, d.reseller, d.key, d.state, d.url, d.attempt, d.outcome, d.status, d.err,
			uint32(d.duration.Milliseconds()), d.at); err != nil {
			return fmt.Errorf("insert deliveries: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert deliveries: %w", err)
	}
	return nil
}

// deadLetter publishes the alert to tally.dlq.webhook_failed (stream
// TALLY_DLQ) with the reason and the webhook.
func (a *Alerts) deadLetter(ctx context.Context, msg jetstream.Msg, d delivery) error {
	m := &nats.Msg{Subject: stream.DLQPrefix + WebhookDeadLetterCode, Data: msg.Data(), Header: nats.Header{}}
	m.Header.Set(stream.HeaderReason, fmt.Sprintf("webhook %s: %d attempts, last: %s", d.webhook, d.attempt, d.err))
	m.Header.Set(stream.HeaderOriginalSubject, msg.Subject())
	m.Header.Set(HeaderWebhookID, d.webhook)
	m.Header.Set(jetstream.MsgIDHeader, "webhook-"+d.id)
	if _, err := a.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.id, err)
	}
	return nil
}
