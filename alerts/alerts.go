// Package alerts is the alerts stage: every Interval it evaluates rules
// (quota thresholds, low usage, no jobs, failed payments, expiring and
// expired subscriptions, usage spikes and drops, failure-rate spikes)
// against the read models in ClickHouse, records each alert in the alerts
// table and publishes every raised or resolved alert on
// tally.alerts.<reseller>.<rule> (stream TALLY_ALERTS, the durable queue for
// delivery). It also turns customer activity events (new organizations,
// subscription changes) into notifications within seconds, and delivers
// alerts to per-reseller webhooks (HMAC-signed, retried with backoff,
// logged in alert_deliveries, dead-lettered after the last attempt).
//
// Replicas are safe: a JetStream KV lease per rule and evaluation window lets
// exactly one replica evaluate a window, and alerts are idempotent by their
// alert_key (raised once, resolved once, across restarts).
package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/alertspec"
)

// Config configures the alerts stage.
type Config struct {
	// Interval is how often rules are evaluated; it is also the lease window.
	Interval time.Duration
	// LeaseBucket is the JetStream KV bucket holding evaluation leases.
	LeaseBucket string
	// LeaseTTL is how long a lease key lives; at least Interval.
	LeaseTTL time.Duration
	// Instance names this replica in leases (default: a random id).
	Instance string
	// Replicas of the TALLY_ALERTS stream and the lease bucket (1 in
	// development, 3 on a NATS cluster).
	Replicas int

	// QuotaThresholds are the quota percentages that raise an alert once
	// per subscription period.
	QuotaThresholds []int
	// LowUsageShare: a paid organization using less than this share of its
	// quota pro-rated to the last LowUsageWindow (within the current
	// period, at least half the window long) is low usage.
	LowUsageShare  float64
	LowUsageWindow time.Duration
	// NoJobsDays: a paid organization without a job for this many days.
	NoJobsDays int
	// ExpiringDays: a subscription ending within this many days.
	ExpiringDays int
	// PaymentLookback: failed payments younger than this are alerted on.
	PaymentLookback time.Duration

	// Spike configures the spike, drop and failure-rate rules.
	Spike SpikeConfig

	// ActivityConsumer is the durable consumer on TALLY_EVENTS for customer
	// activity notifications (shared by replicas); empty disables them.
	ActivityConsumer string

	// Webhooks configures webhook delivery of alerts.
	Webhooks WebhookConfig

	// Now is the clock rules use (default time.Now); tests inject one.
	Now func() time.Time
}

// SpikeConfig configures the spike rules: the last hour against the same
// hour of the week over previous weeks (median and MAD).
type SpikeConfig struct {
	// Weeks of history in the baseline.
	Weeks int
	// MinJobs is the volume floor: fewer finished jobs in the hour never
	// make a spike, and a baseline below it never makes a drop.
	MinJobs int
	// MinRatio: a spike is at least this multiple of the baseline median.
	MinRatio float64
	// DropRatio: a drop is at most this share of the baseline median.
	DropRatio float64
	// Z is how many robust standard deviations (1.4826 × MAD) away from
	// the median a spike or drop must be.
	Z float64
	// MinFailed and MinFailureRateIncrease gate the failure-rate rule.
	MinFailed              int
	MinFailureRateIncrease float64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	d := alertspec.DefaultSettings()
	return Config{
		Interval:        time.Minute,
		LeaseBucket:     "tally_alerts_lease",
		LeaseTTL:        10 * time.Minute,
		Replicas:        1,
		QuotaThresholds: d.QuotaThresholds,
		LowUsageShare:   d.LowUsageShare,
		LowUsageWindow:  7 * 24 * time.Hour,
		NoJobsDays:      d.NoJobsDays,
		ExpiringDays:    7,
		PaymentLookback: 30 * 24 * time.Hour,
		Spike: SpikeConfig{
			Weeks: 4, MinJobs: d.SpikeMinJobs, MinRatio: d.SpikeMinRatio, DropRatio: 0.2, Z: 3,
			MinFailed: 5, MinFailureRateIncrease: 0.2,
		},
		ActivityConsumer: "tally-alerts-activity",
		Webhooks:         DefaultWebhookConfig(),
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Interval < time.Second:
		return errors.New("alerts: interval must be at least 1s")
	case !validBucket(c.LeaseBucket):
		return fmt.Errorf("alerts: lease bucket %q: want letters, digits, - and _", c.LeaseBucket)
	case c.Replicas < 1 || c.Replicas > 5:
		return errors.New("alerts: replicas must be within 1..5")
	case c.LeaseTTL < c.Interval:
		return errors.New("alerts: lease TTL must be at least the interval")
	case len(c.QuotaThresholds) == 0:
		return errors.New("alerts: at least one quota threshold")
	case c.LowUsageShare < 0 || c.LowUsageShare > 1:
		return errors.New("alerts: low usage share must be within 0..1")
	case c.LowUsageWindow < time.Hour:
		return errors.New("alerts: low usage window must be at least 1h")
	case c.NoJobsDays < 1 || c.ExpiringDays < 1:
		return errors.New("alerts: no-jobs and expiring days must be at least 1")
	case c.PaymentLookback <= 0:
		return errors.New("alerts: payment lookback must be positive")
	case c.Spike.Weeks < 1 || c.Spike.MinJobs < 1 || c.Spike.MinRatio <= 1 || c.Spike.DropRatio <= 0 || c.Spike.DropRatio >= 1 || c.Spike.Z <= 0:
		return errors.New("alerts: spike: weeks and min jobs at least 1, min ratio > 1, drop ratio within (0, 1), z > 0")
	case c.ActivityConsumer != "" && !validBucket(c.ActivityConsumer):
		return fmt.Errorf("alerts: activity consumer %q: want letters, digits, - and _", c.ActivityConsumer)
	}
	if err := c.Webhooks.validate(); err != nil {
		return err
	}
	for _, t := range c.QuotaThresholds {
		if t < 1 || t > 1000 {
			return fmt.Errorf("alerts: quota threshold %d%%: want 1..1000", t)
		}
	}
	return nil
}

// Alerts is the alerts stage.
type Alerts struct {
	cfg   Config
	js    jetstream.JetStream
	conn  driver.Conn
	log   *slog.Logger
	rules []rule
	kv    jetstream.KeyValue
	hooks webhookCache
	memo  cycleMemo
}

// New returns the stage; Run creates the stream and lease bucket.
func New(cfg Config, js jetstream.JetStream, conn driver.Conn, log *slog.Logger) (*Alerts, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Instance == "" {
		cfg.Instance = randomID()
	}
	a := &Alerts{cfg: cfg, js: js, conn: conn, log: log}
	a.rules = a.defaultRules()
	return a, nil
}

// Setup creates (or updates) the TALLY_ALERTS stream and the lease bucket.
// Run calls it; it is idempotent.
func (a *Alerts) Setup(ctx context.Context) error {
	if err := EnsureStream(ctx, a.js, a.cfg.Replicas); err != nil {
		return err
	}
	kv, err := a.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      a.cfg.LeaseBucket,
		Description: "tally alerts: one evaluator per rule and window",
		History:     1,
		TTL:         a.cfg.LeaseTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    a.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("lease bucket %s: %w", a.cfg.LeaseBucket, err)
	}
	a.kv = kv
	if a.cfg.Webhooks.Consumer != "" {
		if _, err := a.ensureWebhookConsumer(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Run evaluates the rules at the start of every Interval window, turns
// customer activity into notifications and delivers alerts to webhooks,
// until ctx ends; it returns once the consumers are drained.
func (a *Alerts) Run(ctx context.Context) error {
	if err := a.Setup(ctx); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if a.cfg.ActivityConsumer != "" {
		g.Go(func() error { return a.runActivity(gctx) })
	}
	if a.cfg.Webhooks.Consumer != "" {
		g.Go(func() error { return a.runWebhooks(gctx) })
	}
	g.Go(func() error {
		for {
			if err := a.Evaluate(gctx); err != nil && gctx.Err() == nil {
				a.log.Warn("evaluate alerts", "err", err)
			}
			// Wake just after the next window starts, so replicas compete
			// for the same window and none evaluates one twice.
			now := time.Now()
			wait := now.Truncate(a.cfg.Interval).Add(a.cfg.Interval).Sub(now) + 100*time.Millisecond
			select {
			case <-gctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	})
	return g.Wait()
}

// Evaluate runs every rule whose lease for the current window this replica
// wins. Rules evaluate state, not edges, so a missed window is caught up by
// the next one.
func (a *Alerts) Evaluate(ctx context.Context) error {
	if a.kv == nil {
		return errors.New("alerts: Setup not called")
	}
	now := a.cfg.Now().UTC()
	window := now.Truncate(a.cfg.Interval)
	var errs []error
	st, err := a.loadSettings(ctx)
	if err != nil {
		return err
	}
	for _, r := range a.rules {
		ok, err := a.lease(ctx, r.name, window)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		found, err := r.eval(ctx, now, st)
		if errors.Is(err, errNotReady) {
			a.log.Debug("rule skipped: data not complete", "rule", r.name)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.name, err))
			continue
		}
		if err := a.reconcile(ctx, r.name, now, st.enabledOnly(r.name, found)); err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.name, err))
		}
	}
	return errors.Join(errs...)
}
