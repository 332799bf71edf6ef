package query

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/schemas"
)

// Webhooks live in alert_webhooks (latest row per webhook wins). A deleted
// webhook is a row with an empty url, no secret and enabled 0: the alerts
// stage never delivers to it and the API treats it as nonexistent.
const (
	webhooksListSQL = `SELECT webhook_id, url, secret, rules, enabled, updated_at
FROM alert_webhooks FINAL
WHERE reseller_id = ?
ORDER BY webhook_id`
	webhookSQL = `SELECT webhook_id, url, secret, rules, enabled, updated_at
FROM alert_webhooks FINAL
WHERE reseller_id = ? AND webhook_id = ?`
	insertWebhookSQL = `INSERT INTO alert_webhooks (webhook_id, reseller_id, url, secret, rules, enabled, updated_at, version)`
	// deliveriesSQL: a webhook's latest delivery attempts. Args: reseller,
	// webhook, limit.
	deliveriesSQL = `SELECT delivery_id, alert_key, attempt, outcome, status_code, error, duration_ms, at
FROM alert_deliveries
WHERE reseller_id = ? AND webhook_id = ?
ORDER BY at DESC, delivery_id DESC, attempt DESC
LIMIT ?`
)

// Secrets the API accepts or generates.
const (
	secretPrefix    = "whsec_"
	minSecretLength = 16
	maxSecretLength = 256
)

type webhookItem struct {
	ID         string    `json:"id"`
	URL        string    `json:"url"`
	Rules      []string  `json:"rules"`
	Enabled    bool      `json:"enabled"`
	UpdatedAt  time.Time `json:"updated_at"`
	SecretHint string    `json:"secret_hint"`
	// Secret is shown once, in the answer to the request that set it.
	Secret string `json:"secret,omitempty"`
}

type webhooksResponse struct {
	Webhooks []webhookItem `json:"webhooks"`
}

// webhookRequest is the body of POST /v1/webhooks and PUT
// /v1/webhooks/{id}. On PUT, fields left out keep their values.
type webhookRequest struct {
	URL     *string   `json:"url"`
	Rules   *[]string `json:"rules"`
	Enabled *bool     `json:"enabled"`
	Secret  *string   `json:"secret"`
}

type storedWebhook struct {
	alertspec.Webhook
	updatedAt time.Time
}

func secretHint(secret string) string {
	if len(secret) < 8 {
		return "…"
	}
	return "…" + secret[len(secret)-4:]
}

func (w storedWebhook) view(loc *time.Location) webhookItem {
	rules := w.Rules
	if rules == nil {
		rules = []string{}
	}
	return webhookItem{ID: w.ID, URL: w.URL, Rules: rules, Enabled: w.Enabled, UpdatedAt: w.updatedAt.In(loc), SecretHint: secretHint(w.Secret)}
}

func (q *Query) readWebhooks(c *fiber.Ctx, reseller, id string) ([]storedWebhook, error) {
	sql, args := webhooksListSQL, []any{reseller}
	if id != "" {
		sql, args = webhookSQL, []any{reseller, id}
	}
	rows, err := q.conn.Query(c.UserContext(), sql, args...)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var out []storedWebhook
	for rows.Next() {
		w := storedWebhook{Webhook: alertspec.Webhook{ResellerID: reseller}}
		var enabled uint8
		if err := rows.Scan(&w.ID, &w.URL, &w.Secret, &w.Rules, &enabled, &w.updatedAt); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		if w.URL == "" {
			continue // deleted
		}
		w.Enabled = enabled == 1
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return out, nil
}

// webhookParam reads the {id} webhook of the reseller, or a 404 (the same
// for another reseller's webhook as for a nonexistent one).
func (q *Query) webhookParam(c *fiber.Ctx, s scope) (storedWebhook, error) {
	id := c.Params("id")
	if !schemas.ValidToken(id) {
		return storedWebhook{}, notFound("webhook")
	}
	list, err := q.readWebhooks(c, s.reseller, id)
	if err != nil {
		return storedWebhook{}, err
	}
	if len(list) == 0 {
		return storedWebhook{}, notFound("webhook")
	}
	return list[0], nil
}

func (q *Query) writeWebhook(c *fiber.Ctx, w alertspec.Webhook) (time.Time, error) {
	rules := w.Rules
	if rules == nil {
		rules = []string{}
	}
	var enabled uint8
	if w.Enabled {
		enabled = 1
	}
	now := q.now().UTC()
	b, err := q.conn.PrepareBatch(c.UserContext(), insertWebhookSQL)
	if err != nil {
		return now, fmt.Errorf("save webhook: %w", err)
	}
	if err := b.Append(w.ID, w.ResellerID, w.URL, w.Secret, rules, enabled, now, uint64(time.Now().UnixNano())); err != nil {
		_ = b.Abort()
		return now, fmt.Errorf("save webhook: %w", err)
	}
	if err := b.Send(); err != nil {
		return now, fmt.Errorf("save webhook: %w", err)
	}
	return now, nil
}

// webhooks lists the reseller's webhooks; secrets only as a hint.
func (q *Query) webhooks(c *fiber.Ctx) error {
	s := scopeOf(c)
	list, err := q.readWebhooks(c, s.reseller, "")
	if err != nil {
		return err
	}
	resp := webhooksResponse{Webhooks: make([]webhookItem, 0, len(list))}
	for _, w := range list {
		resp.Webhooks = append(resp.Webhooks, w.view(s.loc))
	}
	return c.JSON(resp)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// apply validates a request onto w.
func (r webhookRequest) apply(w *alertspec.Webhook) error {
	if r.URL != nil {
		w.URL = strings.TrimSpace(*r.URL)
	}
	if r.Rules != nil {
		w.Rules = slices.Compact(slices.Sorted(slices.Values(*r.Rules)))
	}
	if r.Enabled != nil {
		w.Enabled = *r.Enabled
	}
	if r.Secret != nil {
		if n := len(*r.Secret); n < minSecretLength || n > maxSecretLength || strings.TrimSpace(*r.Secret) != *r.Secret {
			return badBody("secret", "secret: %d to %d characters without surrounding spaces (leave it out to have one generated)", minSecretLength, maxSecretLength)
		}
		w.Secret = *r.Secret
	}
	var we *alertspec.WebhookError
	if err := w.Validate(); errors.As(err, &we) {
		return badBody(we.Field, "%s: %s", we.Field, we.Reason)
	} else if err != nil {
		return badBody("", "%v", err)
	}
	return nil
}

// createWebhook adds a webhook; the answer shows its signing secret, the
// only time it is shown (generated when the request has none).
func (q *Query) createWebhook(c *fiber.Ctx) error {
	s := scopeOf(c)
	var req webhookRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.URL == nil {
		return badBody("url", "url: required")
	}
	id, err := randomHex(6)
	if err != nil {
		return err
	}
	w := alertspec.Webhook{ID: "wh_" + id, ResellerID: s.reseller, Enabled: true}
	if req.Secret == nil {
		sec, err := randomHex(24)
		if err != nil {
			return err
		}
		w.Secret = secretPrefix + sec
	}
	if err := req.apply(&w); err != nil {
		return err
	}
	at, err := q.writeWebhook(c, w)
	if err != nil {
		return err
	}
	item := storedWebhook{Webhook: w, updatedAt: at}.view(s.loc)
	item.Secret = w.Secret
	return c.Status(fiber.StatusCreated).JSON(item)
}

// putWebhook changes a webhook; fields left out keep their values.
func (q *Query) putWebhook(c *fiber.Ctx) error {
	s := scopeOf(c)
	cur, err := q.webhookParam(c, s)
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	w := cur.Webhook
	if err := req.apply(&w); err != nil {
		return err
	}
	at, err := q.writeWebhook(c, w)
	if err != nil {
		return err
	}
	item := storedWebhook{Webhook: w, updatedAt: at}.view(s.loc)
	if req.Secret != nil {
		item.Secret = w.Secret
	}
	return c.JSON(item)
}

// deleteWebhook writes the deleted row (see above).
func (q *Query) deleteWebhook(c *fiber.Ctx) error {
	s := scopeOf(c)
	cur, err := q.webhookParam(c, s)
	if err != nil {
		return err
	}
	if _, err := q.writeWebhook(c, alertspec.Webhook{ID: cur.ID, ResellerID: s.reseller}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// testWebhook publishes a test alert for this webhook only (of its first
// rule, or quota when it takes every rule); the alerts stage delivers it.
func (q *Query) testWebhook(c *fiber.Ctx) error {
	s := scopeOf(c)
	w, err := q.webhookParam(c, s)
	if err != nil {
		return err
	}
	if !w.Enabled {
		return &APIError{Status: fiber.StatusConflict, Code: "conflict", Message: "the webhook is disabled: enable it to test it"}
	}
	rule := alertspec.RuleQuota
	if len(w.Rules) > 0 {
		rule = w.Rules[0]
	}
	al, err := alertspec.NewTestAlert(s.reseller, rule, q.now())
	if err != nil {
		return err
	}
	al.WebhookID = w.ID
	if err := q.fireTestAlert(c, al); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(testAlertResponse{AlertKey: al.Key})
}

type deliveryItem struct {
	DeliveryID string    `json:"delivery_id"`
	AlertKey   string    `json:"alert_key"`
	Attempt    uint32    `json:"attempt"`
	Outcome    string    `json:"outcome"`
	StatusCode uint16    `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS uint32    `json:"duration_ms"`
	At         time.Time `json:"at"`
}

type deliveriesResponse struct {
	Deliveries []deliveryItem `json:"deliveries"`
}

// webhookDeliveries lists a webhook's latest delivery attempts.
func (q *Query) webhookDeliveries(c *fiber.Ctx) error {
	s := scopeOf(c)
	limit, err := intParam(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	w, err := q.webhookParam(c, s)
	if err != nil {
		return err
	}
	rows, err := q.conn.Query(c.UserContext(), deliveriesSQL, s.reseller, w.ID, limit)
	if err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	resp := deliveriesResponse{Deliveries: []deliveryItem{}}
	for rows.Next() {
		var d deliveryItem
		if err := rows.Scan(&d.DeliveryID, &d.AlertKey, &d.Attempt, &d.Outcome, &d.StatusCode, &d.Error, &d.DurationMS, &d.At); err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		d.At = d.At.In(s.loc)
		resp.Deliveries = append(resp.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("deliveries: %w", err)
	}
	return c.JSON(resp)
}
