// Package query is tally's read API for the reseller dashboard: a Fiber
// HTTP service over the ClickHouse read models. Every request is
// authenticated with a Bearer key (see keys.go) that belongs to one reseller
// or to the operator, and every query is scoped to one reseller by a bound
// parameter: another reseller's organization, alert or webhook answers 404
// exactly like one that does not exist. Test alerts are published on NATS
// when Config.JetStream is set.
//
// Routes (query/openapi.yaml, served at /openapi.yaml, is the reference):
//
//	GET /v1/overview              headline metrics with change against the previous period
//	GET /v1/activity              latest jobs, keyset pagination
//	GET /v1/organizations         organizations, filters, sort, page pagination
//	GET /v1/organizations/{id}    one organization in detail
//	GET /v1/usage                 usage metrics grouped by time and up to two dimensions
//	GET /v1/notifications         the feed (notices, customer activity, billing, usage alerts), read state
//	POST /v1/notifications/read   mark feed items (or all) read
//	GET /v1/reports/*.csv         usage, financial and activity CSV reports
//	GET /v1/me                    the caller's role, reseller and revenue access
//	GET /v1/resellers             resellers the key may pick, with organization counts
//	GET /v1/alerts                alerts with filters, keyset pagination
//	POST /v1/alerts/{key}/acknowledge
//	GET, POST /v1/alert-rules     rules with effective settings; create an override
//	PUT, DELETE /v1/alert-rules/{rule}, POST /v1/alert-rules/{rule}/test
//	GET, POST /v1/webhooks        alert webhooks (secret shown once at creation)
//	PUT, DELETE /v1/webhooks/{id}, POST /v1/webhooks/{id}/test, GET /v1/webhooks/{id}/deliveries
//	GET /healthz, /readyz, /metrics, /openapi.yaml
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultListen          = ":8081"
	DefaultRequestTimeout  = 15 * time.Second
	DefaultKeyCacheTTL     = 10 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultTimeZone        = "UTC"
)

// Config configures the query stage. Zero values mean the defaults.
type Config struct {
	// Listen is the TCP address Run serves on. Default ":8081".
	Listen string
	// RequestTimeout bounds each request's ClickHouse work. Default 15s.
	RequestTimeout time.Duration
	// KeyCacheTTL is how long a key lookup (found, revoked or unknown) is
	// cached: a revocation takes effect within it. Default 10s.
	KeyCacheTTL time.Duration
	// ShutdownTimeout bounds draining in-flight requests. Default 15s.
	ShutdownTimeout time.Duration
	// TimeZone is the IANA zone used when a request has no ?tz=. Default UTC.
	TimeZone string
	// Now is the clock (tests fix it). Default time.Now.
	Now func() time.Time
	// JetStream, when set, lets the API publish test alerts on
	// TALLY_ALERTS (POST /v1/alert-rules/{rule}/test and
	// /v1/webhooks/{id}/test), which the alerts stage delivers to webhooks.
	// Without it those routes answer 503.
	JetStream jetstream.JetStream
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Listen:          DefaultListen,
		RequestTimeout:  DefaultRequestTimeout,
		KeyCacheTTL:     DefaultKeyCacheTTL,
		ShutdownTimeout: DefaultShutdownTimeout,
		TimeZone:        DefaultTimeZone,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.KeyCacheTTL == 0 {
		c.KeyCacheTTL = d.KeyCacheTTL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.TimeZone == "" {
		c.TimeZone = d.TimeZone
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if c.RequestTimeout < 0 || c.KeyCacheTTL < 0 || c.ShutdownTimeout < 0 {
		return errors.New("query: timeouts must be >= 0")
	}
	if c.TimeZone != "" {
		if _, err := loadZone(c.TimeZone); err != nil {
			return fmt.Errorf("query: time zone: %w", err)
		}
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("query: listen address %q: %w", c.Listen, err)
		}
	}
	return nil
}

// Query is the query stage.
type Query struct {
	cfg     Config
	conn    driver.Conn
	log     *slog.Logger
	keys    *keyCache
	metrics *metrics
	gather  prometheus.Gatherer
	defLoc  *time.Location
	app     *fiber.App
	js      jetstream.JetStream

	streamMu    sync.Mutex
	streamReady bool

	orgCountsMu sync.Mutex
	orgCounts   map[string]orgCount
}

// New builds the stage. Metrics are registered on reg and served from it at
// /metrics (nil: a private registry).
func New(cfg Config, conn driver.Conn, log *slog.Logger, reg *prometheus.Registry) (*Query, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, errors.New("query: nil ClickHouse connection")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	loc, _ := loadZone(cfg.TimeZone)
	q := &Query{
		cfg:     cfg,
		conn:    conn,
		log:     log,
		keys:    newKeyCache(conn, cfg.KeyCacheTTL),
		metrics: m,
		gather:  reg,
		defLoc:  loc,
		js:      cfg.JetStream,

		orgCounts: map[string]orgCount{},
	}
	q.app = q.newApp()
	return q, nil
}

// App returns the Fiber app, for tests (app.Test) or mounting elsewhere.
func (q *Query) App() *fiber.App { return q.app }

// Run serves on Config.Listen until ctx ends, then drains in-flight
// requests (at most Config.ShutdownTimeout).
func (q *Query) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", q.cfg.Listen)
	if err != nil {
		return fmt.Errorf("query: listen: %w", err)
	}
	return q.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened; ln is closed on return.
func (q *Query) Serve(ctx context.Context, ln net.Listener) error {
	q.log.Info("query listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- q.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("query: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.cfg.ShutdownTimeout)
	defer cancel()
	if err := q.app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("query: shutdown: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("query: serve: %w", err)
	}
	return nil
}

// now is the API clock in whole seconds (DateTime's resolution).
func (q *Query) now() time.Time { return q.cfg.Now().Truncate(time.Second) }
