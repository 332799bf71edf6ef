package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/tallyhq/tally/alerts"
	"github.com/tallyhq/tally/chstore"
)

func runAlerts(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "webhook":
			return runAlertsWebhook(ctx, args[1:])
		case "settings":
			return runAlertsSettings(ctx, args[1:])
		}
	}
	fs := newFlagSet("alerts")
	var (
		lo    logOptions
		no    natsOptions
		co    clickhouseOptions
		ao    alertsOptions
		opsAt string
	)
	lo.register(fs)
	no.register(fs)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	ao.register(fs)
	stringVar(fs, &opsAt, "ops-listen", ":9094", "address for /healthz, /readyz and /metrics (empty disables)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lo.logger()
	if err != nil {
		return err
	}
	acfg, err := ao.config()
	if err != nil {
		return err
	}
	if err := acfg.Validate(); err != nil {
		return err
	}
	nc, js, err := no.connect(log, "alerts")
	if err != nil {
		return err
	}
	defer nc.Close()
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	a, err := alerts.New(acfg, js, conn, log)
	if err != nil {
		return err
	}
	reg := newRegistry()
	return runWithOps(ctx, log, reg, opsAt, readyChecks(nc, conn), a.Run)
}

// alertsOptions configures the alerts stage.
type alertsOptions struct {
	cfg        alerts.Config
	thresholds string
}

func (o *alertsOptions) register(fs *flag.FlagSet) {
	def := alerts.DefaultConfig()
	o.cfg = def
	durationVar(fs, &o.cfg.Interval, "alerts-interval", def.Interval, "how often alert rules are evaluated (one replica per window)")
	stringVar(fs, &o.cfg.LeaseBucket, "alerts-lease-bucket", def.LeaseBucket, "JetStream KV bucket of evaluation leases")
	intVar(fs, &o.cfg.Replicas, "alerts-replicas", def.Replicas, "replicas of the TALLY_ALERTS stream and the lease bucket (3 on a NATS cluster)")
	durationVar(fs, &o.cfg.LeaseTTL, "alerts-lease-ttl", def.LeaseTTL, "how long an evaluation lease is kept")
	stringVar(fs, &o.thresholds, "quota-thresholds", joinInts(def.QuotaThresholds), "quota percentages that raise an alert once per period, comma separated")
	float64Var(fs, &o.cfg.LowUsageShare, "low-usage-share", def.LowUsageShare, "a paid organization below this share of its pro-rated quota is low usage")
	durationVar(fs, &o.cfg.LowUsageWindow, "low-usage-window", def.LowUsageWindow, "trailing window of the low usage rule")
	intVar(fs, &o.cfg.NoJobsDays, "no-jobs-days", def.NoJobsDays, "days without a job that raise a no-jobs alert for a paid organization")
	intVar(fs, &o.cfg.ExpiringDays, "expiring-days", def.ExpiringDays, "days before a non-renewing subscription ends that raise an expiring alert")
	intVar(fs, &o.cfg.Spike.MinJobs, "spike-min-jobs", def.Spike.MinJobs, "fewest jobs in an hour that can be a spike (and usual jobs that can be a drop)")
	float64Var(fs, &o.cfg.Spike.MinRatio, "spike-min-ratio", def.Spike.MinRatio, "a spike is at least this multiple of the usual hour")
	stringVar(fs, &o.cfg.ActivityConsumer, "alerts-activity-consumer", def.ActivityConsumer, "durable consumer for customer activity notifications (empty disables)")
}

func (o *alertsOptions) config() (alerts.Config, error) {
	c := o.cfg
	c.QuotaThresholds = nil
	for _, s := range strings.Split(o.thresholds, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return c, fmt.Errorf("--quota-thresholds %q: %w", o.thresholds, err)
		}
		c.QuotaThresholds = append(c.QuotaThresholds, n)
	}
	return c, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// runAlertsWebhook saves a reseller's webhook:
// tally alerts webhook --reseller r1 --id ops --url https://... --secret s [--rules quota,usage_spike] [--disable].
func runAlertsWebhook(ctx context.Context, args []string) error {
	fs := newFlagSet("alerts webhook")
	var (
		co      clickhouseOptions
		w       alerts.Webhook
		rules   string
		disable bool
	)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	fs.StringVar(&w.ResellerID, "reseller", "", "reseller the webhook belongs to")
	fs.StringVar(&w.ID, "id", "", "webhook id (saving an existing id replaces it)")
	fs.StringVar(&w.URL, "url", "", "http(s) URL alerts are POSTed to")
	fs.StringVar(&w.Secret, "secret", "", "HMAC-SHA256 signing secret shared with the receiver")
	fs.StringVar(&rules, "rules", "", "only these rules, comma separated (default: every rule)")
	fs.BoolVar(&disable, "disable", false, "disable the webhook")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	w.Enabled = !disable
	w.Rules = parseKeys(rules)
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := alerts.SaveWebhook(ctx, conn, w); err != nil {
		return err
	}
	fmt.Printf("webhook %s of reseller %s saved (enabled: %v)\n", w.ID, w.ResellerID, w.Enabled)
	return nil
}

// runAlertsSettings saves a reseller's rule settings:
// tally alerts settings --reseller r1 --json '{"quota_thresholds":[50,100],"disabled_rules":["low_usage"]}'.
func runAlertsSettings(ctx context.Context, args []string) error {
	fs := newFlagSet("alerts settings")
	var (
		co       clickhouseOptions
		reseller string
		raw      string
	)
	co.register(fs, "127.0.0.1:9000", "ClickHouse native protocol address host:port")
	fs.StringVar(&reseller, "reseller", "", "reseller the settings apply to")
	fs.StringVar(&raw, "json", "{}", "settings JSON: disabled_rules, quota_thresholds, low_usage_share, no_jobs_days, spike_min_jobs, spike_min_ratio")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var rs alerts.ResellerSettings
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	conn, err := chstore.Open(ctx, co.config())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := alerts.SaveSettings(ctx, conn, reseller, rs); err != nil {
		return err
	}
	fmt.Printf("alert settings of reseller %s saved\n", reseller)
	return nil
}
