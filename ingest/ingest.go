// Package ingest is tally's HTTP ingest stage: it authenticates publishers,
// validates events (schemas.Decode) and publishes them to JetStream
// (publish.Publisher), answering only after JetStream acknowledged every
// accepted event.
//
// Routes:
//
//	POST /v1/events   Content-Type application/json (one event or an array),
//	                  application/cloudevents+json (one event),
//	                  application/cloudevents-batch+json (an array),
//	                  application/x-ndjson or application/ndjson (one event per line)
//	GET  /healthz     the process is alive
//	GET  /readyz      NATS is connected and the events stream answers
//
// POST /v1/events needs "Authorization: Bearer <ingest key>". It answers
// 200 when every event was accepted or a duplicate, 207 when some were
// rejected (the others are stored), 400 when all were rejected or the body
// is not JSON, 401, 413 (body or batch too large), 415 and 503 (NATS
// unavailable; retrying the whole request is safe, events are deduplicated
// by id). The body lists a result per event; see the golden files in
// testdata/ for examples.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/publish"
)

// Defaults of Config.
const (
	DefaultListen          = ":8080"
	DefaultMaxBodyBytes    = 10 << 20
	DefaultMaxBatch        = 10_000
	DefaultReadTimeout     = 30 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	// MinKeyLength is the shortest ingest key accepted.
	MinKeyLength = 16
)

// Config configures the ingest stage. Zero values mean the defaults.
type Config struct {
	// Listen is the TCP address to serve on (Run). Default ":8080".
	Listen string
	// Keys are the accepted ingest keys (Authorization: Bearer <key>), at
	// least one, each at least MinKeyLength characters without whitespace.
	// Only their SHA-256 hashes are kept in memory.
	Keys []string
	// MaxBodyBytes bounds a request body. Default 10 MiB.
	MaxBodyBytes int
	// MaxBatch bounds the events in one request. Default 10,000.
	MaxBatch int
	// ReadTimeout, WriteTimeout and IdleTimeout are the HTTP server's.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds draining in-flight requests when Run's context
	// ends. Default 30s.
	ShutdownTimeout time.Duration
	// Publish tunes the JetStream publisher (in-flight limit, ack timeout).
	Publish publish.Options
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if len(c.Keys) == 0 {
		return errors.New("ingest: at least one ingest key required")
	}
	for i, k := range c.Keys {
		if len(k) < MinKeyLength {
			return fmt.Errorf("ingest: key #%d: must be at least %d characters", i+1, MinKeyLength)
		}
		if strings.ContainsAny(k, " \t\r\n") {
			return fmt.Errorf("ingest: key #%d: must not contain whitespace", i+1)
		}
	}
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("ingest: max body bytes: must be > 0, got %d", c.MaxBodyBytes)
	case c.MaxBatch < 0:
		return fmt.Errorf("ingest: max batch: must be > 0, got %d", c.MaxBatch)
	case c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.ShutdownTimeout < 0:
		return errors.New("ingest: timeouts must be >= 0")
	case c.Publish.MaxPending < 0 || c.Publish.AckTimeout < 0:
		return errors.New("ingest: publish max pending and ack timeout must be >= 0")
	}
	return nil
}

// Ingest is the HTTP ingest stage.
type Ingest struct {
	cfg     Config
	js      jetstream.JetStream
	pub     *publish.Publisher
	log     *slog.Logger
	metrics *metrics
	keys    [][sha256.Size]byte
	app     *fiber.App
}

// New builds the stage. Metrics are registered on reg (nil: not registered).
func New(cfg Config, js jetstream.JetStream, log *slog.Logger, reg prometheus.Registerer) (*Ingest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("ingest: nil JetStream")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	in := &Ingest{
		cfg:     cfg,
		js:      js,
		pub:     publish.New(js, cfg.Publish),
		log:     log,
		metrics: m,
	}
	for _, k := range cfg.Keys {
		in.keys = append(in.keys, sha256.Sum256([]byte(k)))
	}
	in.app = in.newApp()
	return in, nil
}

// App returns the Fiber app, for tests (app.Test) or mounting elsewhere.
func (in *Ingest) App() *fiber.App { return in.app }

// Run serves on Config.Listen until ctx ends, then drains in-flight
// requests (at most Config.ShutdownTimeout).
func (in *Ingest) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", in.cfg.Listen)
	if err != nil {
		return fmt.Errorf("ingest: listen: %w", err)
	}
	return in.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests listen on port 0).
// Serve (or Run) can be called once per Ingest; ln is closed on return.
func (in *Ingest) Serve(ctx context.Context, ln net.Listener) error {
	in.log.Info("ingest listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- in.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("ingest: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.ShutdownTimeout)
	defer cancel()
	if err := in.app.ShutdownWithContext(sctx); err != nil {
		return fmt.Errorf("ingest: shutdown: %w", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("ingest: serve: %w", err)
	}
	return nil
}
