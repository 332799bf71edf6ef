package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/schemas"
)

// Read-model queries the bench waits on.
const (
	// usageTotalQuery counts the job events the usage aggregates hold.
	usageTotalQuery  = `SELECT sumMerge(jobs_created) + sumMerge(jobs_completed) + sumMerge(jobs_failed) FROM usage_15m`
	eventsCountQuery = `SELECT count() FROM events`
	// visibleJobsQuery returns which of the bound job ids the jobs read
	// model holds (ClickHouse 18.16 needs the arrayJoin to bind a list).
	visibleJobsQuery = `SELECT DISTINCT job_id FROM jobs WHERE job_id IN (SELECT arrayJoin(?))`
)

const (
	pollEvery       = 20 * time.Millisecond // freshness visibility polls
	sampleEvery     = 50 * time.Millisecond // one freshness sample per interval
	rssEvery        = 50 * time.Millisecond
	publishBatch    = 1000 // events per PublishRaw call in the end-to-end run
	publishWorkers  = 4
	freshnessSettle = 15 * time.Second // wait for the last samples after publishing stops
	floorMaxBatch   = 10_000           // most rows per INSERT of the freshness floor
)

// checkUsage verifies that the read models hold exactly the n events of a
// corpus: n rows in events and every job event in usage_15m.
func checkUsage(ctx context.Context, conn driver.Conn, n int) error {
	var events, usage uint64
	if err := conn.QueryRow(ctx, eventsCountQuery).Scan(&events); err != nil {
		return fmt.Errorf("count events: %w", err)
	}
	if err := conn.QueryRow(ctx, usageTotalQuery).Scan(&usage); err != nil {
		return fmt.Errorf("usage total: %w", err)
	}
	if events != uint64(n) || usage != usageCount(n) {
		return fmt.Errorf("read models hold %d events and %d usage-counted job events, want %d and %d",
			events, usage, n, usageCount(n))
	}
	return nil
}

// waitUsage polls the usage aggregates until they count all job events of
// n, and returns when it saw that. It fails if the count does not move for
// waitStallLimit or alive reports an error.
func waitUsage(ctx context.Context, conn driver.Conn, n int, every time.Duration, alive func() error) (time.Time, error) {
	want := usageCount(n)
	var last uint64
	lastMove := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var got uint64
		if err := conn.QueryRow(ctx, usageTotalQuery).Scan(&got); err != nil {
			return time.Time{}, fmt.Errorf("usage total: %w", err)
		}
		now := time.Now()
		if got >= want {
			return now, nil
		}
		if got != last {
			last, lastMove = got, now
		} else if now.Sub(lastMove) > waitStallLimit {
			return time.Time{}, fmt.Errorf("usage aggregates: %w for %s at %d of %d job events", errStalled, waitStallLimit, got, want)
		}
		if alive != nil {
			if err := alive(); err != nil {
				return time.Time{}, err
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

func (e *env) usagePollEvery() time.Duration {
	if e.cfg.Events < 200_000 {
		return 25 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// pipelinePublisher publishes corpus events with the publish package, as
// the platform's Go services and tally's ingest do.
type pipelinePublisher struct {
	nc        *nats.Conn
	pub       *publish.Publisher
	c         *corpus
	envelopes []schemas.Event // per subject: type and tenant
}

func (e *env) newPipelinePublisher(c *corpus) (*pipelinePublisher, error) {
	nc, err := nats.Connect(e.ns.ClientURL(), nats.Name("tally-bench-publisher"))
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(publish.DefaultAckTimeout),
		jetstream.WithPublishAsyncMaxPending(publish.DefaultMaxPending))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &pipelinePublisher{nc: nc, pub: publish.New(js, publish.Options{}), c: c}
	for _, s := range c.subjects {
		// tally.events.<reseller>.<org>.<type with dots>
		parts := strings.SplitN(strings.TrimPrefix(s, "tally.events."), ".", 3)
		p.envelopes = append(p.envelopes, schemas.Event{SpecVersion: schemas.SpecVersion, ResellerID: parts[0], OrgID: parts[1], Type: parts[2]})
	}
	return p, nil
}

func (p *pipelinePublisher) close() { p.nc.Close() }

// publish publishes events [from, to) with one PublishRaw call and checks
// that every one was accepted.
func (p *pipelinePublisher) publish(ctx context.Context, from, to int, items []publish.RawEvent, evs []schemas.Event) error {
	items, evs = items[:0], evs[:0]
	for i := from; i < to; i++ {
		ev := p.envelopes[p.c.subjIdx[i]]
		ev.ID = p.c.ids[i]
		evs = append(evs, ev)
	}
	for k, i := 0, from; i < to; k, i = k+1, i+1 {
		items = append(items, publish.RawEvent{Event: &evs[k], Body: p.c.body(i)})
	}
	rs, err := p.pub.PublishRaw(ctx, items)
	if err != nil {
		return fmt.Errorf("publish events %d..%d: %w", from, to, err)
	}
	for _, r := range rs {
		if r.Status != publish.StatusAccepted {
			return fmt.Errorf("publish %s: %s: %v", r.ID, r.Status, r.Err)
		}
	}
	return nil
}

// publishAll publishes the whole corpus from workers goroutines in batches.
func (p *pipelinePublisher) publishAll(ctx context.Context, workers, batch int) error {
	var next atomic.Int64
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			items := make([]publish.RawEvent, 0, batch)
			evs := make([]schemas.Event, 0, batch)
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= p.c.len() {
					errs <- nil
					return
				}
				if err := p.publish(ctx, from, min(from+batch, p.c.len()), items, evs); err != nil {
					next.Store(int64(p.c.len()))
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for w := 0; w < workers; w++ {
		first = cmpOr(first, <-errs)
	}
	return first
}

// e2eResult is the end-to-end measurement.
type e2eResult struct {
	throughput
	pubElapsed time.Duration
	pubRate    float64
	projector  string // projector metrics summary
}

// measureEndToEnd starts the projector, publishes Events events with the
// publish package and waits until the usage aggregates count all of them.
func (e *env) measureEndToEnd(ctx context.Context) (e2eResult, error) {
	if err := e.freshStream(ctx); err != nil {
		return e2eResult{}, err
	}
	chcfg, conn, err := e.freshDB(ctx, "e2e")
	if err != nil {
		return e2eResult{}, err
	}
	defer conn.Close()
	c := newGenerator("e2", time.Now()).corpus(e.cfg.Events)
	p, err := e.newPipelinePublisher(c)
	if err != nil {
		return e2eResult{}, err
	}
	defer p.close()
	cpu := e.meter()
	proj, err := e.startProjector(ctx, chcfg.Database, "e2e")
	if err != nil {
		return e2eResult{}, err
	}
	cpu.add("projector", proj.pid())
	e.logf("end to end: publishing %s events while the projector runs…", num(float64(c.len())))
	start := time.Now()
	if err := p.publishAll(ctx, publishWorkers, publishBatch); err != nil {
		return e2eResult{}, err
	}
	pubElapsed := time.Since(start)
	e.logf("  published in %s (%s events/s); waiting for the usage aggregates…", pubElapsed.Round(time.Millisecond), num(float64(c.len())/pubElapsed.Seconds()))
	done, err := waitUsage(ctx, conn, c.len(), e.usagePollEvery(), proj.alive)
	if err != nil {
		return e2eResult{}, fmt.Errorf("%w%s", err, proj.logTail())
	}
	r := e2eResult{throughput: newRate(c.len(), done.Sub(start)), pubElapsed: pubElapsed, pubRate: float64(c.len()) / pubElapsed.Seconds()}
	r.cpu = cpu.summary(c.len())
	r.detail = fmt.Sprintf("%d goroutines, batches of %d", publishWorkers, publishBatch)
	r.projector = e.projectorStats(ctx, proj)
	e.logf("  end to end: %s events/s (%s). %s %s", num(r.rate), r.elapsed.Round(time.Millisecond), r.cpu, r.projector)
	if err := e.stopChild(proj); err != nil {
		return r, err
	}
	if err := checkUsage(ctx, conn, c.len()); err != nil {
		return r, err
	}
	return r, e.retireDB(ctx, chcfg.Database)
}

// backlogResult is the projector memory measurement.
type backlogResult struct {
	throughput
	peakRSS   uint64
	samples   int
	projector string // projector metrics summary
}

// measureBacklog publishes Events events first, then starts the projector
// and samples its memory until the usage aggregates count them all.
func (e *env) measureBacklog(ctx context.Context) (backlogResult, error) {
	if err := e.freshStream(ctx); err != nil {
		return backlogResult{}, err
	}
	chcfg, conn, err := e.freshDB(ctx, "backlog")
	if err != nil {
		return backlogResult{}, err
	}
	defer conn.Close()
	c := newGenerator("bl", time.Now()).corpus(e.cfg.Events)
	e.logf("projector memory: publishing a backlog of %s events…", num(float64(c.len())))
	d, err := e.publishAll(ctx, c)
	if err != nil {
		return backlogResult{}, err
	}
	e.logf("  backlog published in %s; starting the projector", d.Round(time.Millisecond))
	cpu := e.meter()
	start := time.Now()
	proj, err := e.launchProjector(chcfg.Database, "backlog")
	if err != nil {
		return backlogResult{}, err
	}
	cpu.add("projector", proj.pid())
	rss := startRSSSampler(proj.pid(), rssEvery)
	done, err := waitUsage(ctx, conn, c.len(), e.usagePollEvery(), proj.alive)
	cpuUsed := cpu.summary(c.len())
	peak, samples, rssErr := rss.Stop()
	if err != nil {
		return backlogResult{}, fmt.Errorf("%w%s", err, proj.logTail())
	}
	if rssErr != nil {
		return backlogResult{}, fmt.Errorf("projector memory: %w", rssErr)
	}
	r := backlogResult{throughput: newRate(c.len(), done.Sub(start)), peakRSS: peak, samples: samples}
	r.cpu = cpuUsed
	r.projector = e.projectorStats(ctx, proj)
	e.logf("  caught up in %s (%s events/s), peak RSS %.1f MiB. %s %s", r.elapsed.Round(time.Millisecond), num(r.rate), float64(peak)/(1<<20), r.cpu, r.projector)
	if err := e.stopChild(proj); err != nil {
		return r, err
	}
	if err := checkUsage(ctx, conn, c.len()); err != nil {
		return r, err
	}
	return r, e.retireDB(ctx, chcfg.Database)
}

// freshnessResult is a latency measurement.
type freshnessResult struct {
	p50, p99, max time.Duration
	samples       int
	rate          float64 // achieved publish rate
	published     int
	cpu           string // cpuMeter summary
	projector     string // projector metrics summary, if a projector ran
}

// measureFreshness runs the projector while events are published at
// FreshnessRate and measures publish-to-visible latency in jobs.
func (e *env) measureFreshness(ctx context.Context) (freshnessResult, error) {
	if err := e.freshStream(ctx); err != nil {
		return freshnessResult{}, err
	}
	chcfg, conn, err := e.freshDB(ctx, "fresh")
	if err != nil {
		return freshnessResult{}, err
	}
	defer conn.Close()
	cpu := e.meter()
	proj, err := e.startProjector(ctx, chcfg.Database, "freshness")
	if err != nil {
		return freshnessResult{}, err
	}
	cpu.add("projector", proj.pid())
	e.logf("freshness: %s events/s for %s through the projector…", num(float64(e.cfg.FreshnessRate)), e.cfg.FreshnessDuration)
	r, err := e.steadyRun(ctx, conn, "fr", e.cfg.FreshnessDuration, proj.alive)
	if err != nil {
		return r, fmt.Errorf("%w%s", err, proj.logTail())
	}
	r.cpu = cpu.summary(r.published)
	r.projector = e.projectorStats(ctx, proj)
	e.logf("  freshness p50 %s, p99 %s (%d samples). %s %s", r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.samples, r.cpu, r.projector)
	if err := e.stopChild(proj); err != nil {
		return r, err
	}
	return r, e.retireDB(ctx, chcfg.Database)
}

// measureFreshnessFloor is the freshness floor: the same steady publishing,
// consumed by a raw pull consumer that INSERTs whatever each fetch
// returned at once (no batching wait, no validation, no dedup lookups).
func (e *env) measureFreshnessFloor(ctx context.Context) (freshnessResult, error) {
	if err := e.freshStream(ctx); err != nil {
		return freshnessResult{}, err
	}
	chcfg, conn, err := e.freshDB(ctx, "floor")
	if err != nil {
		return freshnessResult{}, err
	}
	defer conn.Close()
	cons, err := e.rawConsumer(ctx)
	if err != nil {
		return freshnessResult{}, err
	}
	gen := newGenerator("fl", time.Now())
	insert := rawInserter(ctx, conn, gen, nil)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() { consumed <- consumeNoWait(cctx, cons, insert) }()
	alive := func() error {
		select {
		case err := <-consumed:
			return fmt.Errorf("raw consumer stopped: %v", err)
		default:
			return nil
		}
	}
	e.logf("freshness floor: %s events/s for %s through a raw consumer inserting at once…", num(float64(e.cfg.FreshnessRate)), e.cfg.floorDuration())
	cpu := e.meter()
	r, err := e.steadyRunWith(ctx, conn, gen, e.cfg.floorDuration(), alive)
	if err != nil {
		return r, err
	}
	r.cpu = cpu.summary(r.published)
	cancel()
	if err := <-consumed; err != nil && ctx.Err() == nil && err != context.Canceled {
		return r, err
	}
	e.logf("  floor p50 %s, p99 %s (%d samples). %s", r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.samples, r.cpu)
	return r, e.retireDB(ctx, chcfg.Database)
}

// rawInserter returns a handler that INSERTs the `events` rows of fetched
// messages (rebuilt from their ids, no parsing or validation) into events
// and adds the count to inserted (if not nil).
func rawInserter(ctx context.Context, conn driver.Conn, gen *generator, inserted *atomic.Int64) func([]jetstream.Msg) error {
	query, _ := insertInto("events")
	var rows rowBatch
	return func(msgs []jetstream.Msg) error {
		rows.reset()
		now := time.Now()
		for _, m := range msgs {
			id := m.Headers().Get(jetstream.MsgIDHeader)
			n := indexFromID(id)
			if n < 0 {
				return fmt.Errorf("unexpected message id %q", id)
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("message metadata: %w", err)
			}
			ev := gen.event(n)
			rows.add(&ev, m.Data(), md.Sequence.Stream, now)
		}
		b, err := conn.PrepareBatch(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		if err := rows.appendTo(b); err != nil {
			_ = b.Abort()
			return err
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		if inserted != nil {
			inserted.Add(int64(len(msgs)))
		}
		return nil
	}
}

// consumeNoWait takes everything the stream has for the consumer (up to
// floorMaxBatch, without waiting to fill a batch), hands it to handle and
// acks it, until ctx ends.
func consumeNoWait(ctx context.Context, cons jetstream.Consumer, handle func([]jetstream.Msg) error) error {
	msgs := make([]jetstream.Msg, 0, floorMaxBatch)
	for ctx.Err() == nil {
		msgs = msgs[:0]
		for len(msgs) < floorMaxBatch {
			b, err := cons.FetchNoWait(min(rawFetchBatch, floorMaxBatch-len(msgs)))
			if err != nil {
				return fmt.Errorf("fetch: %w", err)
			}
			got := 0
			for m := range b.Messages() {
				msgs = append(msgs, m)
				got++
			}
			if got < rawFetchBatch {
				break
			}
		}
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
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

func (e *env) steadyRun(ctx context.Context, conn driver.Conn, phase string, d time.Duration, alive func() error) (freshnessResult, error) {
	return e.steadyRunWith(ctx, conn, newGenerator(phase, time.Now()), d, alive)
}

// steadyRunWith publishes events of gen at FreshnessRate for d with the
// publish package and measures, for one job.created event every
// sampleEvery, the time from just before its publish call until a poll of
// the jobs read model returned it.
func (e *env) steadyRunWith(ctx context.Context, conn driver.Conn, gen *generator, d time.Duration, alive func() error) (freshnessResult, error) {
	rate := e.cfg.FreshnessRate
	total := int(float64(rate) * d.Seconds())
	c := gen.corpus(total)
	p, err := e.newPipelinePublisher(c)
	if err != nil {
		return freshnessResult{}, err
	}
	defer p.close()

	type sample struct {
		jobID string
		sent  time.Time
	}
	var (
		mu      sync.Mutex
		pending []sample
		lat     []time.Duration
	)
	pubDone := make(chan struct{})
	pollErr := make(chan error, 1)
	go func() {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		deadline := time.Time{}
		ids := make([]string, 0, 64)
		for {
			select {
			case <-ctx.Done():
				pollErr <- ctx.Err()
				return
			case <-t.C:
			}
			mu.Lock()
			ids = ids[:0]
			for _, s := range pending {
				ids = append(ids, s.jobID)
			}
			mu.Unlock()
			select {
			case <-pubDone:
				if deadline.IsZero() {
					deadline = time.Now().Add(freshnessSettle)
				}
				if len(ids) == 0 {
					pollErr <- nil
					return
				}
				if time.Now().After(deadline) {
					pollErr <- fmt.Errorf("%d sampled events not visible %s after publishing ended", len(ids), freshnessSettle)
					return
				}
			default:
			}
			if len(ids) == 0 {
				continue
			}
			seen, err := visibleJobs(ctx, conn, ids)
			now := time.Now()
			if err != nil {
				pollErr <- err
				return
			}
			mu.Lock()
			kept := pending[:0]
			for _, s := range pending {
				if _, ok := seen[s.jobID]; ok {
					lat = append(lat, now.Sub(s.sent))
				} else {
					kept = append(kept, s)
				}
			}
			pending = kept
			mu.Unlock()
		}
	}()

	items := make([]publish.RawEvent, 0, rate)
	evs := make([]schemas.Event, 0, rate)
	start := time.Now()
	lastSample := time.Time{}
	sent := 0
	tick := time.NewTicker(10 * time.Millisecond)
	var runErr error
	for sent < total && runErr == nil {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			continue
		case err := <-pollErr:
			runErr = fmt.Errorf("poll: %w", err)
			continue
		case <-tick.C:
		}
		if err := alive(); err != nil {
			runErr = err
			continue
		}
		due := min(total, int(time.Since(start).Seconds()*float64(rate))) - sent
		if due <= 0 {
			continue
		}
		now := time.Now()
		if now.Sub(lastSample) >= sampleEvery {
			for i := sent; i < sent+due; i++ {
				if ev := gen.event(i); ev.typ == schemas.TypeJobCreated {
					mu.Lock()
					pending = append(pending, sample{jobID: ev.jobID, sent: now})
					mu.Unlock()
					lastSample = now
					break
				}
			}
		}
		if err := p.publish(ctx, sent, sent+due, items, evs); err != nil {
			runErr = err
			continue
		}
		sent += due
	}
	tick.Stop()
	achieved := float64(sent) / time.Since(start).Seconds()
	close(pubDone)
	if runErr != nil {
		return freshnessResult{}, runErr
	}
	if err := <-pollErr; err != nil {
		return freshnessResult{}, fmt.Errorf("poll: %w", err)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		return freshnessResult{}, fmt.Errorf("no freshness samples")
	}
	return freshnessResult{p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), max: lat[len(lat)-1],
		samples: len(lat), rate: achieved, published: sent}, nil
}

// visibleJobs returns which of ids the jobs read model holds.
func visibleJobs(ctx context.Context, conn driver.Conn, ids []string) (map[string]struct{}, error) {
	rows, err := conn.Query(ctx, visibleJobsQuery, ids)
	if err != nil {
		return nil, fmt.Errorf("query jobs: %w", err)
	}
	defer rows.Close()
	seen := make(map[string]struct{}, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan job id: %w", err)
		}
		seen[id] = struct{}{}
	}
	return seen, rows.Err()
}
