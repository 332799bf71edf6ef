package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/stream"
)

// rawAckPending is the raw consumers' MaxAckPending: the projector's
// default, 4 × its batch size (projector.Config.MaxAckPending).
const rawAckPending = 4 * projector.DefaultBatchSize

// Raw engine settings used by every ceiling.
const (
	rawFetchBatch = 1000
	rawConsumer   = "bench-raw"
	// The raw consumers fetch and hold messages as the projector does by
	// default.
	pipelineBatch   = projector.DefaultBatchSize
	pipelineWait    = projector.DefaultBatchWait
	waitStallLimit  = 90 * time.Second
	publishDeadline = 30 * time.Second
)

// calibrationWindows are the async publish windows (most publishes in
// flight) the raw publisher tries; the fastest is used by every ceiling.
// 4096 is publish.DefaultMaxPending.
var calibrationWindows = []int{256, 1024, 4096}

// throughput is a throughput measurement.
type throughput struct {
	rate    float64 // events/s
	elapsed time.Duration
	detail  string
	cpu     string // cpuMeter summary
}

func newRate(n int, d time.Duration) throughput {
	return throughput{rate: float64(n) / d.Seconds(), elapsed: d}
}

// rawPublisher publishes a corpus with JetStream async publishes carrying
// Nats-Msg-Id, on its own connection, counting acks.
type rawPublisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	acked  atomic.Int64
	dups   atomic.Int64
	failed atomic.Int64
	err    atomic.Pointer[error]
}

func newRawPublisher(url string, window int) (*rawPublisher, error) {
	if window <= 0 { // not calibrated: only publishing a backlog
		window = 1024
	}
	p := &rawPublisher{}
	nc, err := nats.Connect(url, nats.Name("tally-bench-raw-publisher"))
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(publishDeadline),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, _ *nats.Msg, a *jetstream.PubAck) {
			p.acked.Add(1)
			if a.Duplicate {
				p.dups.Add(1)
			}
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.failed.Add(1)
			p.err.CompareAndSwap(nil, &err)
		}),
	)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p.nc, p.js = nc, js
	return p, nil
}

func (p *rawPublisher) close() { p.nc.Close() }

// publish sends events [from, to) of c without waiting for acks.
func (p *rawPublisher) publish(c *corpus, from, to int) error {
	for i := from; i < to; i++ {
		m := &nats.Msg{
			Subject: c.subject(i),
			Data:    c.body(i),
			Header:  nats.Header{jetstream.MsgIDHeader: []string{c.ids[i]}},
		}
		if _, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(publishDeadline)); err != nil {
			return fmt.Errorf("publish %s: %w", c.ids[i], err)
		}
	}
	return nil
}

// wait blocks until every publish so far is acknowledged or failed, and
// checks that want events were stored (no failures, no duplicates).
func (p *rawPublisher) wait(ctx context.Context, want int) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * publishDeadline):
		return fmt.Errorf("acks missing after %s: %d of %d acknowledged", 2*publishDeadline, p.acked.Load(), want)
	}
	if perr := p.err.Load(); perr != nil {
		return fmt.Errorf("%d publishes failed, first: %w", p.failed.Load(), *perr)
	}
	if d := p.dups.Load(); d > 0 {
		return fmt.Errorf("%d publishes were duplicates (ids reused across measurements?)", d)
	}
	if a := p.acked.Load(); a != int64(want) {
		return fmt.Errorf("%d of %d publishes acknowledged", a, want)
	}
	return nil
}

// publishAll publishes all of c and waits for the acks.
func (e *env) publishAll(ctx context.Context, c *corpus) (time.Duration, error) {
	p, err := newRawPublisher(e.ns.ClientURL(), e.window)
	if err != nil {
		return 0, err
	}
	defer p.close()
	start := time.Now()
	if err := p.publish(c, 0, c.len()); err != nil {
		return 0, err
	}
	if err := p.wait(ctx, c.len()); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// calibrate publishes a short corpus with each of calibrationWindows and
// keeps the fastest window in e.window for every raw publisher, so the
// ceilings are what JetStream does at its best on this machine.
func (e *env) calibrate(ctx context.Context) (map[int]float64, error) {
	n := e.cfg.calibrationEvents()
	rates := make(map[int]float64)
	for i, w := range calibrationWindows {
		if err := e.freshStream(ctx); err != nil {
			return nil, err
		}
		c := newGenerator("k"+strconv.Itoa(i), time.Now()).corpus(n)
		e.window = w
		d, err := e.publishAll(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("window %d: %w", w, err)
		}
		rates[w] = float64(n) / d.Seconds()
	}
	best := calibrationWindows[0]
	for _, w := range calibrationWindows {
		if rates[w] > rates[best] {
			best = w
		}
	}
	e.window = best
	var parts []string
	for _, w := range calibrationWindows {
		parts = append(parts, fmt.Sprintf("%d in flight %s/s", w, num(rates[w])))
	}
	e.logf("raw publish calibration (%s events each): %s; using %d", num(float64(n)), strings.Join(parts, ", "), best)
	return rates, nil
}

// measureRawPublish is the ingest ceiling: raw async publishes of the
// ingest run's bodies into a fresh stream, with the best window.
func (e *env) measureRawPublish(ctx context.Context) (throughput, error) {
	rates, err := e.calibrate(ctx)
	if err != nil {
		return throughput{}, fmt.Errorf("calibrate: %w", err)
	}
	if err := e.freshStream(ctx); err != nil {
		return throughput{}, err
	}
	c := newGenerator("rp", time.Now()).corpus(e.cfg.IngestEvents)
	e.logf("ceiling: raw JetStream async publish of %s events, %d in flight…", num(float64(c.len())), e.window)
	cpu := e.meter()
	d, err := e.publishAll(ctx, c)
	if err != nil {
		return throughput{}, err
	}
	cpuUsed := cpu.summary(c.len())
	if err := e.checkStream(ctx, c.len()); err != nil {
		return throughput{}, err
	}
	r := newRate(c.len(), d)
	var parts []string
	for _, w := range calibrationWindows {
		parts = append(parts, fmt.Sprintf("%d: %s/s", w, num(rates[w])))
	}
	r.detail = fmt.Sprintf("one goroutine, at most %d publishes in flight, the fastest of a calibration with %s events per window (%s)",
		e.window, num(float64(e.cfg.calibrationEvents())), strings.Join(parts, ", "))
	r.cpu = cpuUsed
	e.logf("  raw publish: %s events/s (%s). %s", num(r.rate), d.Round(time.Millisecond), r.cpu)
	return r, nil
}

func (e *env) checkStream(ctx context.Context, want int) error {
	n, err := e.streamMsgs(ctx)
	if err != nil {
		return err
	}
	if n != uint64(want) {
		return fmt.Errorf("stream holds %d messages, want %d", n, want)
	}
	return nil
}

// measurePubSub is end-to-end ceiling (a): one goroutine publishes the
// corpus asynchronously while one pull consumer fetches batches and acks
// every message, like the projector without ClickHouse.
func (e *env) measurePubSub(ctx context.Context) (throughput, error) {
	if err := e.freshStream(ctx); err != nil {
		return throughput{}, err
	}
	c := newGenerator("ps", time.Now()).corpus(e.cfg.Events)
	cons, err := e.rawConsumer(ctx)
	if err != nil {
		return throughput{}, err
	}
	p, err := newRawPublisher(e.ns.ClientURL(), e.window)
	if err != nil {
		return throughput{}, err
	}
	defer p.close()
	e.logf("ceiling (a): raw publish + pull-consume of %s events at once…", num(float64(c.len())))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	cpu := e.meter()
	start := time.Now()
	go func() { consumed <- consumeAll(ctx, cons, c.len(), nil) }()
	if err := p.publish(c, 0, c.len()); err != nil {
		return throughput{}, err
	}
	pubDone := time.Since(start)
	if err := p.wait(ctx, c.len()); err != nil {
		return throughput{}, err
	}
	if err := <-consumed; err != nil {
		return throughput{}, err
	}
	r := newRate(c.len(), time.Since(start))
	r.cpu = cpu.summary(c.len())
	r.detail = fmt.Sprintf("One async publisher (%d in flight) and one pull consumer: Fetch batches of %d, AckExplicit with one Ack per message "+
		"(as the projector), MaxAckPending %s; publishing alone took %s.",
		e.window, rawFetchBatch, num(rawAckPending), pubDone.Round(time.Millisecond))
	e.logf("  raw publish+consume: %s events/s (%s). %s", num(r.rate), r.elapsed.Round(time.Millisecond), r.cpu)
	return r, nil
}

// rawConsumer creates the raw durable pull consumer on the events stream.
func (e *env) rawConsumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := e.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{
		Durable:       rawConsumer,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       60 * time.Second,
		MaxAckPending: rawAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("create raw consumer: %w", err)
	}
	return cons, nil
}

// consumeBatches fetches batches of up to size messages, waiting at most
// wait to fill one, hands each to handle and acks its messages, until ctx
// ends.
func consumeBatches(ctx context.Context, cons jetstream.Consumer, size int, wait time.Duration, handle func([]jetstream.Msg) error) error {
	msgs := make([]jetstream.Msg, 0, size)
	for ctx.Err() == nil {
		b, err := cons.Fetch(size, jetstream.FetchMaxWait(wait))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		msgs = msgs[:0]
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetch: %w", err)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := handle(msgs); err != nil {
			return err
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
	}
	return ctx.Err()
}

// consumeAll fetches and acks until n messages were received. handle, if
// set, is called with each fetched batch before its messages are acked.
func consumeAll(ctx context.Context, cons jetstream.Consumer, n int, handle func([]jetstream.Msg) error) error {
	got := 0
	lastProgress := time.Now()
	msgs := make([]jetstream.Msg, 0, rawFetchBatch)
	for got < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := cons.Fetch(min(rawFetchBatch, n-got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		msgs = msgs[:0]
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetch: %w", err)
		}
		if len(msgs) == 0 {
			if time.Since(lastProgress) > waitStallLimit {
				return fmt.Errorf("consumer: %w for %s after %d of %d messages", errStalled, waitStallLimit, got, n)
			}
			continue
		}
		if handle != nil {
			if err := handle(msgs); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		got += len(msgs)
		lastProgress = time.Now()
	}
	return nil
}

// measureInsert is end-to-end ceiling (b): the corpus's `events` rows
// INSERTed with clickhouse-go in batches into a fresh database (with the
// materialized views), then, in another fresh database, into a plain copy of
// `events` (no views). Only the INSERTs are timed; building the rows is not.
func (e *env) measureInsert(ctx context.Context) (insertResult, error) {
	c := newGenerator("ci", time.Now()).corpus(e.cfg.Events)
	e.logf("ceiling (b): raw ClickHouse INSERT of %s rows into events (with MVs)…", num(float64(c.len())))
	cpu := e.meter()
	withMVs, err := e.insertInto(ctx, "insert", false, c)
	if err != nil {
		return insertResult{}, err
	}
	cpuUsed := cpu.summary(c.len())
	e.logf("  insert with MVs: %s rows/s (%s). %s", num(float64(c.len())/withMVs.Seconds()), withMVs.Round(time.Millisecond), cpuUsed)
	half := newGenerator("cp", time.Now()).corpus(e.cfg.referenceEvents())
	e.logf("reference: raw ClickHouse INSERT of %s rows into a plain copy (no MVs)…", num(float64(half.len())))
	plain, err := e.insertInto(ctx, "plain", true, half)
	if err != nil {
		return insertResult{}, err
	}
	e.logf("  insert without MVs: %s rows/s (%s)", num(float64(half.len())/plain.Seconds()), plain.Round(time.Millisecond))
	return insertResult{
		withMVs: float64(c.len()) / withMVs.Seconds(),
		plain:   float64(half.len()) / plain.Seconds(),
		detail: fmt.Sprintf("One connection, INSERTs of %s rows appended column by column (as the projector does); only the INSERTs are timed: "+
			"%s rows with the materialized views in %s; %s rows into the plain copy in %s. With MVs (whole run, row building included): %s",
			num(float64(e.cfg.InsertBatch)), num(float64(c.len())), withMVs.Round(time.Millisecond), num(float64(half.len())),
			plain.Round(time.Millisecond), cpuUsed),
	}, nil
}

// insertInto inserts c into a fresh database's events table (plain: into a
// copy of it without materialized views), checks the result and drops the
// database.
func (e *env) insertInto(ctx context.Context, what string, plain bool, c *corpus) (time.Duration, error) {
	chcfg, conn, err := e.freshDB(ctx, what)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	table := "events"
	if plain {
		table = "events_plain"
		if err := conn.Exec(ctx, "CREATE TABLE events_plain AS events"); err != nil {
			return 0, fmt.Errorf("create plain copy: %w", err)
		}
	}
	d, err := e.insertCorpus(ctx, conn, table, c)
	if err != nil {
		return 0, err
	}
	if !plain {
		if err := checkUsage(ctx, conn, c.len()); err != nil {
			return 0, err
		}
	}
	return d, e.retireDB(ctx, chcfg.Database)
}

type insertResult struct {
	withMVs, plain float64 // rows/s
	detail         string
}

// insertCorpus inserts c's rows into table in batches and returns the time
// spent in PrepareBatch, Append and Send.
func (e *env) insertCorpus(ctx context.Context, conn driver.Conn, table string, c *corpus) (time.Duration, error) {
	query, err := insertInto(table)
	if err != nil {
		return 0, err
	}
	var rows rowBatch
	var spent time.Duration
	projected := time.Now()
	for from := 0; from < c.len(); from += e.cfg.InsertBatch {
		to := min(from+e.cfg.InsertBatch, c.len())
		rows.reset()
		for i := from; i < to; i++ {
			ev := c.gen.event(i)
			rows.add(&ev, c.body(i), uint64(i+1), projected)
		}
		start := time.Now()
		batch, err := conn.PrepareBatch(ctx, query)
		if err != nil {
			return 0, fmt.Errorf("prepare insert into %s: %w", table, err)
		}
		if err := rows.appendTo(batch); err != nil {
			_ = batch.Abort()
			return 0, err
		}
		if err := batch.Send(); err != nil {
			return 0, fmt.Errorf("insert into %s: %w", table, err)
		}
		spent += time.Since(start)
	}
	return spent, nil
}

// measureRawPipeline is end-to-end reference (c): raw publish, a raw pull
// consumer fetching batches the way the projector does (up to
// pipelineBatch, waiting at most pipelineWait) and raw INSERTs of them (rows
// rebuilt from the ids: no parsing, validation or dedup lookups), all at
// once on the same machine, until every row is inserted. It shows what the
// three raw engines reach together when they share the CPUs, as the
// pipeline's stages do.
func (e *env) measureRawPipeline(ctx context.Context) (throughput, error) {
	if err := e.freshStream(ctx); err != nil {
		return throughput{}, err
	}
	chcfg, conn, err := e.freshDB(ctx, "rawpipe")
	if err != nil {
		return throughput{}, err
	}
	defer conn.Close()
	c := newGenerator("rw", time.Now()).corpus(e.cfg.referenceEvents())
	cons, err := e.rawConsumer(ctx)
	if err != nil {
		return throughput{}, err
	}
	p, err := newRawPublisher(e.ns.ClientURL(), e.window)
	if err != nil {
		return throughput{}, err
	}
	defer p.close()
	e.logf("reference (c): raw publish + pull-consume + INSERT of %s events at once…", num(float64(c.len())))

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inserted atomic.Int64
	allIn := make(chan time.Time, 1)
	insert := rawInserter(ctx, conn, c.gen, &inserted)
	consumed := make(chan error, 1)
	cpu := e.meter()
	start := time.Now()
	go func() {
		consumed <- consumeBatches(cctx, cons, pipelineBatch, pipelineWait, func(msgs []jetstream.Msg) error {
			if err := insert(msgs); err != nil {
				return err
			}
			if inserted.Load() >= int64(c.len()) {
				allIn <- time.Now()
				cancel()
			}
			return nil
		})
	}()
	if err := p.publish(c, 0, c.len()); err != nil {
		return throughput{}, err
	}
	if err := p.wait(ctx, c.len()); err != nil {
		return throughput{}, err
	}
	var done time.Time
	var cpuUsed string
	select {
	case done = <-allIn:
		cpuUsed = cpu.summary(c.len())
	case err := <-consumed:
		return throughput{}, fmt.Errorf("raw consumer stopped early: %v", err)
	case <-ctx.Done():
		return throughput{}, ctx.Err()
	}
	<-consumed
	if err := checkUsage(ctx, conn, c.len()); err != nil {
		return throughput{}, err
	}
	r := newRate(c.len(), done.Sub(start))
	r.cpu = cpuUsed
	e.logf("  raw pipeline: %s events/s (%s). %s", num(r.rate), r.elapsed.Round(time.Millisecond), r.cpu)
	return r, e.retireDB(ctx, chcfg.Database)
}
