// Package projector is the stage that moves events from the TALLY_EVENTS
// JetStream stream into ClickHouse.
//
// It reads batches from a durable pull consumer (shared by every projector
// replica), maps each event to one row of the events table and writes the
// batch with one INSERT; ClickHouse's materialized views derive every other
// read model from that INSERT. Messages are acked only after the INSERT
// succeeded.
//
// Exactly once per event id, on ClickHouse 18.16 which has no insert
// deduplication: an event is looked up in event_ids before it is inserted
// when it could already be there:
//   - it was delivered before (NumDelivered > 1: a crash or an error between
//     INSERT and ack),
//   - it was stored in the stream more than the dedup window minus
//     schemas.MaxClockSkew after its event time (a publisher retry that
//     JetStream no longer recognized as a repeat is necessarily such an
//     event, since no event is accepted further than MaxClockSkew ahead of
//     the clock),
//   - its stream sequence is not above the highest one ClickHouse held when
//     Run started (a reset or recreated consumer replaying the stream),
//   - the previous INSERT attempt of its batch failed (the server may have
//     committed part of it), or its batch was held longer than half the ack
//     wait (the server may have redelivered it to another replica).
//
// Fresh events in steady state pay no lookup. Repeats of an id inside one
// batch are dropped (the first is kept). Messages that are not valid events
// or cannot be mapped go to the dead-letter stream and are acked.
//
// One goroutine fetches and decodes the next batch while another inserts
// the current one; the next batch keeps filling while the INSERT runs, so
// batches grow with the backlog. If ClickHouse fails, the batch is retried
// with backoff (the outage is logged once, and once when it ends) and its
// messages are kept from redelivery with InProgress.
//
// For crash tests, TALLY_FAILPOINT=crash-after-insert:P kills the process
// after an INSERT and before its acks with probability P (see FailpointEnv).
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/stream"
)

// Defaults of Config.
const (
	DefaultConsumer      = "tally-projector"
	DefaultBatchSize     = 80_000
	DefaultBatchWait     = 200 * time.Millisecond
	DefaultBatchLinger   = 3 * time.Second
	DefaultAckWait       = 60 * time.Second
	DefaultDedupWindow   = 2 * time.Minute
	DefaultInsertTimeout = 30 * time.Second
	DefaultRetryMin      = 100 * time.Millisecond
	DefaultRetryMax      = 10 * time.Second
	DefaultLagInterval   = 5 * time.Second
)

// Dead-letter reason codes (the last token of the dead-letter subject).
const (
	// ReasonInvalidEvent: the message is not a valid event (schemas.Decode failed).
	ReasonInvalidEvent = stream.ReasonInvalid
	// ReasonUnprojectable: a valid event whose values do not fit the events
	// table (e.g. a time outside ClickHouse's DateTime range).
	ReasonUnprojectable = stream.ReasonUnprojectable
)

// Config configures a projector. Zero values take the defaults above.
type Config struct {
	// Stream is the events stream. Default stream.EventsStream.
	Stream string
	// Consumer is the durable pull consumer's name, shared by all replicas.
	// Default DefaultConsumer.
	Consumer string
	// FilterSubject optionally restricts the consumer, e.g.
	// "tally.events.r1.>". Empty means the whole stream.
	FilterSubject string
	// BatchSize is the most messages in one batch (one INSERT). A batch
	// fills up to it while the previous INSERT is still running, or while
	// a heavy stream flows (see BatchLinger); otherwise it is what one
	// BatchWait brought. Big is cheap for ClickHouse 18.16, whose cost is
	// mostly per INSERT (a part per table, then their merges): INSERTs
	// into events and its views took 45, 24, 16 and 12 µs of ClickHouse
	// CPU per row at 10,000, 20,000, 40,000 and 80,000 rows. The projector
	// holds up to two batches, so peak RSS follows BatchSize: 220 MiB at
	// 80,000 under tally project's default 200 MiB soft memory limit.
	BatchSize int
	// BatchWait is the longest a fetch waits for messages; it bounds the
	// projector's share of freshness when the stream is quiet.
	BatchWait time.Duration
	// BatchLinger is how long a batch of a heavy stream (one that reached
	// a tenth of BatchSize) may keep filling before an idle insert loop
	// takes it; a lighter batch goes after one BatchWait. It bounds the
	// projector's share of freshness under load. 0 means DefaultBatchLinger
	// or, if shorter, a quarter of AckWait (but at least BatchWait).
	BatchLinger time.Duration
	// AckWait is how long the server waits for an ack before redelivering.
	// Batches held longer (ClickHouse down) are kept alive with InProgress.
	AckWait time.Duration
	// MaxAckPending bounds unacked messages of the consumer across all
	// replicas. 0 means 4×BatchSize; at least 2×BatchSize (each replica
	// holds up to two batches: one inserting, the next one filling).
	MaxAckPending int
	// DedupWindow must not exceed the stream's duplicate window (Run uses
	// the smaller of the two): events stored longer than this after their
	// event time are checked against ClickHouse before insert.
	DedupWindow time.Duration
	// InsertTimeout bounds one INSERT attempt, duplicate lookups included.
	InsertTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff (with jitter)
	// between failed INSERT attempts.
	RetryMin, RetryMax time.Duration
	// LagInterval is how often tally_projector_consumer_lag is refreshed.
	LagInterval time.Duration
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Stream:        stream.EventsStream,
		Consumer:      DefaultConsumer,
		BatchSize:     DefaultBatchSize,
		BatchWait:     DefaultBatchWait,
		AckWait:       DefaultAckWait,
		DedupWindow:   DefaultDedupWindow,
		InsertTimeout: DefaultInsertTimeout,
		RetryMin:      DefaultRetryMin,
		RetryMax:      DefaultRetryMax,
		LagInterval:   DefaultLagInterval,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Stream == "" {
		c.Stream = d.Stream
	}
	if c.Consumer == "" {
		c.Consumer = d.Consumer
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchWait == 0 {
		c.BatchWait = d.BatchWait
	}
	if c.AckWait == 0 {
		c.AckWait = d.AckWait
	}
	if c.BatchLinger == 0 {
		c.BatchLinger = max(min(d.BatchLinger, c.AckWait/4), c.BatchWait)
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 4 * c.BatchSize
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = d.DedupWindow
	}
	if c.InsertTimeout == 0 {
		c.InsertTimeout = d.InsertTimeout
	}
	if c.RetryMin == 0 {
		c.RetryMin = d.RetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = d.RetryMax
	}
	if c.LagInterval == 0 {
		c.LagInterval = d.LagInterval
	}
	return c
}

// natsName is what NATS accepts as a stream or durable consumer name.
var natsName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// Validate reports the first invalid setting (zero values are defaults).
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case !natsName.MatchString(d.Stream):
		return fmt.Errorf("projector stream %q: must match %s", d.Stream, natsName)
	case !natsName.MatchString(d.Consumer):
		return fmt.Errorf("projector consumer %q: must match %s", d.Consumer, natsName)
	case d.BatchSize < 1 || d.BatchSize > 1_000_000:
		return fmt.Errorf("projector batch size: must be 1..1000000, got %d", c.BatchSize)
	case d.BatchWait < time.Millisecond:
		return fmt.Errorf("projector batch wait: must be >= 1ms, got %s", c.BatchWait)
	case d.BatchLinger < d.BatchWait || d.BatchLinger > d.AckWait/4:
		return fmt.Errorf("projector batch linger: must be between the batch wait %s and a quarter of the ack wait %s, got %s", d.BatchWait, d.AckWait, c.BatchLinger)
	case d.AckWait < time.Second:
		return fmt.Errorf("projector ack wait: must be >= 1s, got %s", c.AckWait)
	case d.MaxAckPending < 2*d.BatchSize:
		return fmt.Errorf("projector max ack pending: must be >= 2 x batch size (%d), got %d", 2*d.BatchSize, c.MaxAckPending)
	case d.DedupWindow < 0:
		return fmt.Errorf("projector dedup window: must be >= 0, got %s", c.DedupWindow)
	case d.InsertTimeout <= 0 || d.InsertTimeout > d.AckWait/2:
		return fmt.Errorf("projector insert timeout: must be > 0 and at most half the ack wait %s, got %s", d.AckWait, c.InsertTimeout)
	case d.RetryMin <= 0 || d.RetryMax < d.RetryMin:
		return fmt.Errorf("projector retry backoff: need 0 < min <= max, got %s..%s", c.RetryMin, c.RetryMax)
	case d.LagInterval <= 0:
		return fmt.Errorf("projector lag interval: must be > 0, got %s", c.LagInterval)
	}
	return nil
}

// Projector moves events from JetStream into ClickHouse. Create it with New.
type Projector struct {
	cfg  Config
	js   jetstream.JetStream
	conn driver.Conn
	log  *slog.Logger
	m    *metrics
	fp   failpoint

	// Owned by the goroutine that runs Run's insert loop.
	window   time.Duration // effective dedup window
	hwm      uint64        // max(stream_seq) in ClickHouse when Run started
	hwmKnown bool
	down     bool // ClickHouse inserts are failing
	cols     colBuffers
}

// New checks cfg and prepares a projector; it connects to nothing. The
// failpoint environment variable (FailpointEnv) is read here. reg may be nil.
func New(cfg Config, js jetstream.JetStream, conn driver.Conn, log *slog.Logger, reg prometheus.Registerer) (*Projector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil || conn == nil {
		return nil, errors.New("projector: JetStream and ClickHouse connections are required")
	}
	if log == nil {
		log = slog.Default()
	}
	fp, err := parseFailpoint(os.Getenv(FailpointEnv))
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if fp.crashAfterInsert > 0 {
		log.Warn("failpoint armed: the process will crash after inserts", "failpoint", failpointCrashAfterInsert, "probability", fp.crashAfterInsert)
	}
	return &Projector{cfg: cfg, js: js, conn: conn, log: log, m: m, fp: fp, window: cfg.DedupWindow}, nil
}

// Run creates or updates the durable consumer and projects batches until
// ctx ends. Then it finishes the fetch under way, inserts and acks the
// batches in hand (unless ClickHouse is failing: those are left unacked
// for redelivery) and returns nil. It returns an error if the consumer
// cannot be set up or the NATS connection is closed for good.
func (p *Projector) Run(ctx context.Context) error {
	cons, err := p.setup(ctx)
	if err != nil {
		return err
	}
	p.log.Info("projector started", "stream", p.cfg.Stream, "consumer", p.cfg.Consumer,
		"filter", p.cfg.FilterSubject, "batch_size", p.cfg.BatchSize, "batch_wait", p.cfg.BatchWait, "batch_linger", p.cfg.BatchLinger,
		"dedup_window", p.window)

	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		p.watchLag(lagCtx, cons)
	}()

	// Two batches circulate: the insert loop works on one while the fetch
	// loop fills the other, so at most 2×BatchSize messages are in hand.
	free := make(chan *batch, 2)
	publish := p.js.Conn().Publish
	free <- newBatch(p.cfg.BatchSize, publish)
	free <- newBatch(p.cfg.BatchSize, publish)
	full := make(chan *batch)
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- p.fetchLoop(ctx, cons, free, full) }()

	abandoned := false
	for b := range full {
		if abandoned {
			b.nak(0)
		} else if err := p.flush(ctx, b); err != nil {
			p.log.Warn("stopping with a batch not inserted; it will be redelivered", "messages", len(b.msgs), "error", err)
			b.nak(0)
			abandoned = true
		}
		b.reset()
		free <- b
	}
	stopLag()
	<-lagDone
	if err := <-fetchErr; err != nil {
		return err
	}
	// Acks are fire-and-forget publishes: make sure the server has them.
	if err := p.js.Conn().FlushTimeout(5 * time.Second); err != nil {
		p.log.Warn("flushing the last acks failed; those messages will be redelivered and found in ClickHouse", "error", err)
	}
	p.log.Info("projector stopped")
	return nil
}

// setup creates or updates the consumer and settles the dedup window.
func (p *Projector) setup(ctx context.Context) (jetstream.Consumer, error) {
	s, err := p.js.Stream(ctx, p.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("projector: stream %s: %w", p.cfg.Stream, err)
	}
	if w := s.CachedInfo().Config.Duplicates; w > 0 && w < p.window {
		p.log.Warn("projector dedup window is longer than the stream's; using the stream's", "configured", p.window, "stream", w)
		p.window = w
	}
	cons, err := p.js.CreateOrUpdateConsumer(ctx, p.cfg.Stream, p.consumerConfig())
	if err != nil {
		return nil, fmt.Errorf("projector: create or update consumer %s on %s: %w", p.cfg.Consumer, p.cfg.Stream, err)
	}
	return cons, nil
}

func (p *Projector) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       p.cfg.Consumer,
		Description:   "tally projector: events into ClickHouse",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: p.cfg.MaxAckPending,
		FilterSubject: p.cfg.FilterSubject,
	}
}

func (p *Projector) watchLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(p.cfg.LagInterval)
	defer t.Stop()
	for {
		if info, err := cons.Info(ctx); err == nil {
			p.m.lag.Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
