package alertspec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// Webhook headers.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of secret
	// over "<t>.<body>">".
	HeaderSignature = "Tally-Signature"
	// HeaderDeliveryID identifies one alert change for one webhook: the
	// same on every retry, so a receiver can drop repeats.
	HeaderDeliveryID = "Tally-Delivery-Id"
)

// Webhook is a reseller's alert webhook (the alert_webhooks table).
type Webhook struct {
	ID         string
	ResellerID string
	URL        string
	Secret     string
	// Rules limits the webhook to these rules; empty means every rule.
	Rules   []string
	Enabled bool
}

// WebhookError is an invalid webhook: Field is "id", "reseller_id",
// "url", "secret" or "rules".
type WebhookError struct {
	Field, Reason string
}

// Error returns "webhook: <field>: <reason>".
func (e *WebhookError) Error() string { return "webhook: " + e.Field + ": " + e.Reason }

// Validate reports the first invalid field as a *WebhookError.
func (w Webhook) Validate() error {
	if !schemas.ValidToken(w.ID) {
		return &WebhookError{"id", fmt.Sprintf("%q: want 1-64 of [A-Za-z0-9_-]", w.ID)}
	}
	if !schemas.ValidToken(w.ResellerID) {
		return &WebhookError{"reseller_id", fmt.Sprintf("%q: want 1-64 of [A-Za-z0-9_-]", w.ResellerID)}
	}
	if err := ValidateURL(w.URL); err != nil {
		return &WebhookError{"url", err.Error()}
	}
	if w.Secret == "" {
		return &WebhookError{"secret", "a signing secret is required"}
	}
	for _, r := range w.Rules {
		if !slices.Contains(Rules, r) {
			return &WebhookError{"rules", fmt.Sprintf("unknown rule %q", r)}
		}
	}
	return nil
}

// ValidateURL accepts an absolute http or https URL with a host.
func ValidateURL(raw string) error {
	if len(raw) > 2048 {
		return errors.New("longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want an http or https URL", raw)
	case u.Hostname() == "":
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

// Sign returns the Tally-Signature header value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a Tally-Signature header against body: a valid
// HMAC and a timestamp within tolerance of now (replay protection).
func VerifySignature(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("signature: malformed header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature: timestamp outside tolerance")
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return errors.New("signature: mismatch")
	}
	return nil
}
