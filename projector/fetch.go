package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchLoop fills free batches from the consumer and hands them to the
// insert loop until ctx ends; it closes full when it stops. A batch is
// handed over when it is full, or after a fetch (at most BatchWait) if the
// insert loop is idle: while it is busy, the batch keeps filling, so
// batches grow with the load and ClickHouse gets fewer, larger parts.
// Under a heavy stream (a tenth of BatchSize arrived already) an idle
// insert loop waits for the batch to fill or to age to BatchLinger:
// ClickHouse pays per INSERT, so larger batches raise throughput, while a
// light stream (the freshness case) is still handed over after one
// BatchWait.
// It returns an error only when the NATS connection is closed for good.
func (p *Projector) fetchLoop(ctx context.Context, cons jetstream.Consumer, free <-chan *batch, full chan<- *batch) error {
	defer close(full)
	var (
		failing  bool
		failures int
	)
	b := <-free
	for {
		n, err := p.fill(cons, b)
		switch {
		case len(b.msgs) == 0:
		case len(b.msgs) >= p.cfg.BatchSize || err != nil || ctx.Err() != nil:
			p.handOver(b, full)
			b = <-free
		case n > 0 && p.growing(b):
		default:
			select {
			case full <- b:
				b = <-free
			default:
				if time.Since(b.touched) > p.cfg.AckWait/4 {
					b.keepAlive()
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			if failing {
				p.log.Info("fetching from JetStream recovered")
				failing, failures = false, 0
			}
			continue
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("projector: fetch: %w", err)
		}
		if !failing {
			p.log.Warn("fetching from JetStream failed; retrying", "error", err)
			failing = true
		}
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			if c, cerr := p.js.CreateOrUpdateConsumer(ctx, p.cfg.Stream, p.consumerConfig()); cerr == nil {
				cons = c
			}
		}
		failures++
		sleep(ctx, backoff(p.cfg.RetryMin, p.cfg.RetryMax, failures))
	}
}

// growing reports whether b belongs to a heavy stream and is young enough
// to keep filling although the insert loop is idle. The caller also asks
// that the last fetch brought messages: a batch lingers only while the
// stream flows.
func (p *Projector) growing(b *batch) bool {
	return len(b.msgs) >= p.cfg.BatchSize/10 && time.Since(b.touched) < p.cfg.BatchLinger
}

// fill runs one fetch for the room left in b, waiting at most BatchWait,
// decodes the messages into b and returns how many it got.
func (p *Projector) fill(cons jetstream.Consumer, b *batch) (int, error) {
	if len(b.msgs) == 0 {
		b.touched = time.Now()
	}
	res, err := cons.Fetch(p.cfg.BatchSize-len(b.msgs), jetstream.FetchMaxWait(p.cfg.BatchWait))
	if err != nil {
		return 0, err
	}
	now := time.Now()
	n := 0
	for msg := range res.Messages() {
		b.add(msg, now)
		n++
	}
	if err := res.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return n, err
	}
	return n, nil
}

// handOver passes b to the insert loop, keeping its messages alive on the
// server while the insert loop is busy (ClickHouse down).
func (p *Projector) handOver(b *batch, full chan<- *batch) {
	t := time.NewTicker(p.cfg.AckWait / 4)
	defer t.Stop()
	for {
		select {
		case full <- b:
			return
		case <-t.C:
			b.keepAlive()
		}
	}
}
