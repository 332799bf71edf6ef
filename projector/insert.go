package projector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// flush inserts b (retrying while ClickHouse fails) and acks every message
// of it. It returns an error, leaving b unacked, only when ctx ended while
// the insert was failing.
func (p *Projector) flush(ctx context.Context, b *batch) error {
	p.m.batchSize.Observe(float64(len(b.msgs)))
	p.m.redeliveries.Add(float64(b.redelivered))
	p.deadLetter(ctx, b)
	b.stale = time.Since(b.touched) > p.cfg.AckWait/2

	var (
		start    = time.Now()
		attempts int
		res      insertResult
	)
	for {
		attempts++
		if time.Since(b.touched) > p.cfg.AckWait/4 {
			b.keepAlive()
		}
		t0 := time.Now()
		var err error
		res, err = p.insertOnce(ctx, b)
		if err == nil {
			p.m.insertTime.Observe(time.Since(t0).Seconds())
			break
		}
		p.m.insertErrors.Inc()
		b.failed = true
		if !p.down {
			p.down = true
			p.log.Error("ClickHouse insert failed; retrying with backoff, events wait in JetStream", "error", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("insert batch after %d attempts: %w", attempts, err)
		}
		if !p.wait(ctx, b, backoff(p.cfg.RetryMin, p.cfg.RetryMax, attempts)) {
			return fmt.Errorf("insert batch after %d attempts: %w", attempts, ctx.Err())
		}
	}
	if p.down {
		p.down = false
		p.log.Info("ClickHouse insert recovered", "attempts", attempts, "outage", time.Since(start).Round(time.Millisecond))
	}
	if p.fp.afterInsert() {
		p.log.Warn("failpoint crash-after-insert: killing the process before acks", "inserted", res.inserted)
		crash()
	}
	b.ack()
	done := time.Now()
	for i := range b.meta {
		if !b.meta[i].skipped {
			p.m.delay.Observe(done.Sub(time.Unix(0, b.meta[i].stored)).Seconds())
		}
	}
	p.m.inserted.Add(float64(res.inserted))
	p.m.duplicates.Add(float64(res.duplicates + b.dupsInBatch))
	p.log.Debug("batch projected", "messages", len(b.msgs), "inserted", res.inserted,
		"duplicates", res.duplicates+b.dupsInBatch, "looked_up", res.lookedUp, "dead_letters", len(b.dead),
		"redelivered", b.redelivered, "attempts", attempts, "took", time.Since(start))
	return nil
}

// wait sleeps d, renewing the batch's ack deadline when due. It reports
// false if ctx ended.
func (p *Projector) wait(ctx context.Context, b *batch, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if time.Since(b.touched) > p.cfg.AckWait/4 {
			b.keepAlive()
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		if !sleep(ctx, min(left, p.cfg.AckWait/4)) {
			return false
		}
	}
}

// insertBlockRows is the most rows the driver buffers before sending them
// as one block of the batch's INSERT.
const insertBlockRows = 8192

type insertResult struct {
	inserted, duplicates, lookedUp int
}

// insertOnce looks up the ids that may already be in ClickHouse and inserts
// the rest with one INSERT.
func (p *Projector) insertOnce(ctx context.Context, b *batch) (insertResult, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.InsertTimeout)
	defer cancel()
	if !p.hwmKnown {
		hwm, err := maxStreamSeq(actx, p.conn)
		if err != nil {
			return insertResult{}, err
		}
		p.hwm, p.hwmKnown = hwm, true
	}
	checkAll := b.failed || b.stale
	b.checkIDs = b.checkIDs[:0]
	for i := range b.rows {
		if checkAll || p.mustCheck(&b.rows[i], &b.meta[i]) {
			b.checkIDs = append(b.checkIDs, b.text.field(&b.rows[i], fID))
		}
	}
	var found map[string]struct{}
	if len(b.checkIDs) > 0 {
		p.m.lookups.Add(float64(len(b.checkIDs)))
		var err error
		if found, err = existingIDs(actx, p.conn, b.checkIDs); err != nil {
			return insertResult{}, err
		}
	}
	b.keep = b.keep[:0]
	for i := range b.rows {
		_, dup := found[b.text.field(&b.rows[i], fID)]
		b.meta[i].skipped = dup
		if !dup && len(found) > 0 {
			b.keep = append(b.keep, b.rows[i])
		}
	}
	rows := b.rows
	if len(found) > 0 {
		rows = b.keep
	}
	res := insertResult{inserted: len(rows), duplicates: len(found), lookedUp: len(b.checkIDs)}
	if len(rows) == 0 {
		return res, nil
	}
	ib, err := p.conn.PrepareBatch(actx, insertEventsSQL)
	if err != nil {
		return insertResult{}, fmt.Errorf("prepare insert: %w", err)
	}
	defer ib.Close()
	// The rows go in blocks that reuse the driver's column buffers; the
	// server squashes the blocks of one INSERT into one part per table and
	// partition, and ClickHouse's cost is mostly per part.
	for start := 0; start < len(rows); start += insertBlockRows {
		if err := appendRows(ib, rows[start:min(start+insertBlockRows, len(rows))], &b.text, &p.cols); err != nil {
			return insertResult{}, err
		}
		if err := ib.Flush(); err != nil {
			return insertResult{}, fmt.Errorf("insert %d events: %w", len(rows), err)
		}
	}
	if err := ib.Send(); err != nil {
		return insertResult{}, fmt.Errorf("insert %d events: %w", len(rows), err)
	}
	return res, nil
}

// mustCheck reports whether the event of r may already be in ClickHouse.
func (p *Projector) mustCheck(r *packedRow, m *rowMeta) bool {
	return m.delivered > 1 ||
		r.StreamSeq <= p.hwm ||
		time.Duration(m.stored-int64(r.TimeMS)*int64(time.Millisecond)) > p.window-schemas.MaxClockSkew
}

// deadLetter publishes b's dead letters and acks their messages: they are
// done with. A message whose dead letter could not be published is nacked
// for a later retry instead.
func (p *Projector) deadLetter(ctx context.Context, b *batch) {
	if len(b.dead) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.InsertTimeout)
	defer cancel()
	for i := range b.dead {
		d := &b.dead[i]
		p.log.Warn("dead letter", "code", d.code, "reason", d.reason, "subject", d.msg.Subject(), "stream_seq", d.seq)
		if err := stream.DeadLetter(dctx, p.js, d.msg, d.code, d.reason); err != nil {
			p.log.Error("publishing dead letter failed; the message will be redelivered", "code", d.code, "stream_seq", d.seq, "error", err)
			b.settle(d.idx, nakDelayBody(p.cfg.RetryMax))
			continue
		}
		b.settle(d.idx, ackBody)
		p.m.deadLetters.Inc()
	}
}

// backoff returns the wait before retry n (1-based): exponential from lo,
// capped at hi, with ±25% jitter.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+jitter, time.Millisecond)
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
