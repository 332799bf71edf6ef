// Package publish validates tally events and publishes them to the
// TALLY_EVENTS JetStream stream. It is the Go publisher the platform
// imports; tally's own HTTP ingest uses it too.
//
// Every event is published with Nats-Msg-Id = its id, so publishing the same
// event again inside the stream's dedup window (stream.DefaultDedupWindow)
// stores nothing and reports StatusDuplicate. Retrying a whole batch after an
// error is therefore always safe.
//
// Usage:
//
//	nc, err := nats.Connect(url)
//	if err != nil { ... }
//	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
//	if err != nil { ... }
//	p := publish.New(js, publish.Options{})
//	results, err := p.PublishBatch(ctx, events)
//	if errors.Is(err, publish.ErrUnavailable) {
//		// NATS is down: retry the batch later (dedup makes it safe).
//	}
//	for _, r := range results {
//		if r.Status == publish.StatusRejected {
//			log.Printf("event %d: %v", r.Index, r.Err) // a *schemas.ValidationError
//		}
//	}
//
// The JetStream context should be created with
// jetstream.WithPublishAsyncTimeout (so an ack that never comes is released
// inside nats.go too) and, if it is shared by several publishers, with
// jetstream.WithPublishAsyncMaxPending at least Options.MaxPending.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// Status is the outcome of publishing one event.
type Status string

// Statuses.
const (
	// StatusAccepted: JetStream stored the event.
	StatusAccepted Status = "accepted"
	// StatusDuplicate: JetStream already had an event with this id (inside
	// the dedup window) and stored nothing. Not an error.
	StatusDuplicate Status = "duplicate"
	// StatusRejected: the event is invalid and was not published; Err is a
	// *schemas.ValidationError. Retrying it unchanged fails again.
	StatusRejected Status = "rejected"
	// StatusUnavailable: NATS/JetStream did not confirm the event; it may or
	// may not be stored. Retry it (dedup makes that safe).
	StatusUnavailable Status = "unavailable"
)

// ErrUnavailable is wrapped by the error returned when some events could not
// be confirmed by JetStream: not connected, no stream answering, ack
// timeout, stream full, context ended. Such events have StatusUnavailable.
var ErrUnavailable = errors.New("nats jetstream unavailable")

// Result is the outcome for one event of a batch.
type Result struct {
	// Index is the event's position in the batch.
	Index int
	// ID is the event id ("" if the event had none).
	ID string
	// Status is what happened to the event.
	Status Status
	// Seq is the event's sequence in the stream (accepted and duplicate).
	Seq uint64
	// Err is why the event was rejected (*schemas.ValidationError) or not
	// confirmed; nil for accepted and duplicate events.
	Err error
}

// RawEvent is an already validated event with the exact bytes to publish.
type RawEvent struct {
	// Event is the decoded, valid event (for its id and subject).
	Event *schemas.Event
	// Body is the event's JSON, published as is.
	Body []byte
}

// Defaults of Options.
const (
	DefaultMaxPending = 4096
	DefaultAckTimeout = 5 * time.Second
)

// Options tune a Publisher. Zero values mean the defaults.
type Options struct {
	// MaxPending bounds the events published but not yet acknowledged,
	// across all concurrent calls on the Publisher. Default 4096.
	MaxPending int
	// AckTimeout is how long to wait without any acknowledgement before
	// giving up on the events still pending (StatusUnavailable). Default 5s.
	AckTimeout time.Duration
}

// Publisher publishes events to JetStream. It is safe for concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	slots      chan struct{}
	ackTimeout time.Duration
	pubOpts    []jetstream.PublishOpt
}

// New returns a Publisher on js.
func New(js jetstream.JetStream, opts Options) *Publisher {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	return &Publisher{
		js:         js,
		slots:      make(chan struct{}, opts.MaxPending),
		ackTimeout: opts.AckTimeout,
		// If js's own in-flight limit is lower than ours, wait for a slot
		// as long as for an ack instead of nats.go's default 200ms.
		pubOpts: []jetstream.PublishOpt{jetstream.WithStallWait(opts.AckTimeout)},
	}
}

// Publish validates and publishes one event and waits for its ack. A
// rejected event returns its *schemas.ValidationError; an unconfirmed one an
// error wrapping ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, e *schemas.Event) (Result, error) {
	rs, err := p.PublishBatch(ctx, []*schemas.Event{e})
	if err == nil && rs[0].Status == StatusRejected {
		err = rs[0].Err
	}
	return rs[0], err
}

// PublishBatch validates every event, publishes the valid ones (marshalled
// with encoding/json) asynchronously with Nats-Msg-Id = event id, and
// returns once JetStream acknowledged each of them or gave up. There is one
// Result per event, in order. Invalid events are StatusRejected and not
// published; that is not an error. The error is non-nil, wrapping
// ErrUnavailable, only when some events are StatusUnavailable.
func (p *Publisher) PublishBatch(ctx context.Context, events []*schemas.Event) ([]Result, error) {
	results := make([]Result, len(events))
	b := p.NewBatch(ctx, len(events))
	pos := make([]int, 0, len(events))
	for i, e := range events {
		results[i] = Result{Index: i}
		if e == nil {
			results[i].Status = StatusRejected
			results[i].Err = &schemas.ValidationError{Index: i, Problems: []schemas.FieldError{{Reason: "nil event"}}}
			continue
		}
		results[i].ID = e.ID
		if err := e.Validate(); err != nil {
			results[i].Status = StatusRejected
			results[i].Err = withIndex(err, i)
			continue
		}
		body, err := json.Marshal(e)
		if err != nil {
			results[i].Status = StatusRejected
			results[i].Err = &schemas.ValidationError{Index: i, EventID: e.ID, EventType: e.Type,
				Problems: []schemas.FieldError{{Reason: "cannot encode: " + err.Error()}}}
			continue
		}
		b.Add(RawEvent{Event: e, Body: body})
		pos = append(pos, i)
	}
	return merge(results, pos, b)
}

// PublishRaw publishes events that are already validated, with their bodies
// as given (tally's ingest passes the compacted bytes it received). An item
// without Event or Body is StatusRejected. Otherwise like PublishBatch.
//
// The bodies must not be modified until PublishRaw returns.
func (p *Publisher) PublishRaw(ctx context.Context, items []RawEvent) ([]Result, error) {
	results := make([]Result, len(items))
	b := p.NewBatch(ctx, len(items))
	pos := make([]int, 0, len(items))
	for i, it := range items {
		results[i] = Result{Index: i}
		if it.Event == nil || len(it.Body) == 0 {
			results[i].Status = StatusRejected
			results[i].Err = &schemas.ValidationError{Index: i, Problems: []schemas.FieldError{{Reason: "missing event or body"}}}
			continue
		}
		b.Add(it)
		pos = append(pos, i)
	}
	return merge(results, pos, b)
}

// merge waits for b and copies its results to results[pos[k]].
func merge(results []Result, pos []int, b *Batch) ([]Result, error) {
	brs, err := b.Wait()
	for k, r := range brs {
		i := pos[k]
		r.Index = i
		var ve *schemas.ValidationError
		if errors.As(r.Err, &ve) {
			ve.Index = i
		}
		results[i] = r
	}
	if err != nil {
		n := 0
		for _, r := range results {
			if r.Status == StatusUnavailable {
				n++
			}
		}
		return results, fmt.Errorf("publish: %d of %d events not confirmed: %w", n, len(results), err)
	}
	return results, nil
}

// withIndex sets the batch index on a validation error.
func withIndex(err error, i int) error {
	var ve *schemas.ValidationError
	if errors.As(err, &ve) {
		ve.Index = i
		return ve
	}
	return &schemas.ValidationError{Index: i, Problems: []schemas.FieldError{{Reason: err.Error()}}}
}

// Batch publishes already validated events as they are added, so the
// caller's work on the next event overlaps JetStream storing the previous
// ones; Wait collects the acks. A Batch is used by one goroutine; many
// Batches of one Publisher may run concurrently and share its MaxPending.
type Batch struct {
	p          *Publisher
	ctx        context.Context
	nc         *nats.Conn
	maxPayload int64
	results    []Result
	pending    []inflight
	timer      *time.Timer
	// failure is set once publishing failed (not connected, ack error or
	// timeout, context ended); later events are not published and later
	// acks are only collected if already there.
	failure error
}

// inflight is a published event waiting for its ack.
type inflight struct {
	i int
	f jetstream.PubAckFuture
}

// NewBatch starts a batch; sizeHint is the expected number of events.
func (p *Publisher) NewBatch(ctx context.Context, sizeHint int) *Batch {
	b := &Batch{p: p, ctx: ctx, nc: p.js.Conn(), maxPayload: -1}
	b.results = make([]Result, 0, sizeHint)
	b.pending = make([]inflight, 0, min(sizeHint, cap(p.slots)))
	if b.nc == nil || !b.nc.IsConnected() {
		b.failure = errors.New("not connected to NATS")
	}
	if b.nc != nil {
		b.maxPayload = b.nc.MaxPayload()
	}
	return b
}

// Add publishes e (already validated; e.Body is sent as is and must not be
// modified until Wait returns). It may block while MaxPending events are
// unacknowledged. Its result is Wait's Result at the position of this Add.
func (b *Batch) Add(e RawEvent) {
	i := len(b.results)
	b.results = append(b.results, Result{Index: i, ID: e.Event.ID})
	r := &b.results[i]
	if b.failure == nil {
		b.failure = b.ctx.Err()
	}
	if b.failure == nil && i&63 == 63 && !b.nc.IsConnected() {
		b.failure = errors.New("disconnected from NATS")
	}
	if b.failure != nil {
		r.Status, r.Err = StatusUnavailable, b.failure
		return
	}
	if b.maxPayload > 0 && int64(len(e.Body))+int64(len(e.Event.ID))+64 > b.maxPayload {
		r.Status = StatusRejected
		r.Err = &schemas.ValidationError{Index: i, EventID: e.Event.ID, EventType: e.Event.Type,
			Problems: []schemas.FieldError{{Reason: "event is " + strconv.Itoa(len(e.Body)) +
				" bytes, more than the NATS server accepts (" + strconv.FormatInt(b.maxPayload, 10) + ")"}}}
		return
	}
	if err := b.acquire(); err != nil {
		b.failure = err
		r = &b.results[i]
		r.Status, r.Err = StatusUnavailable, err
		return
	}
	m := &nats.Msg{
		Subject: stream.Subject(e.Event),
		Data:    e.Body,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{e.Event.ID}},
	}
	f, err := b.p.js.PublishMsgAsync(m, b.p.pubOpts...)
	if err != nil {
		<-b.p.slots
		b.failure = err
		r = &b.results[i]
		r.Status, r.Err = StatusUnavailable, err
		return
	}
	b.pending = append(b.pending, inflight{i: i, f: f})
}

// Wait waits for the acks of every added event and returns one Result per
// Add, in order. The error is non-nil, wrapping ErrUnavailable, when some
// events are StatusUnavailable. Call it once.
func (b *Batch) Wait() ([]Result, error) {
	for len(b.pending) > 0 {
		b.waitOldest()
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.failure != nil {
		for _, r := range b.results {
			if r.Status == StatusUnavailable {
				return b.results, fmt.Errorf("%w: %w", ErrUnavailable, b.failure)
			}
		}
	}
	return b.results, nil
}

// acquire takes a publish slot. While none is free it waits for this
// batch's own oldest pending ack (which frees one), so batches never
// deadlock holding slots; with nothing pending it blocks for a slot.
func (b *Batch) acquire() error {
	for {
		select {
		case b.p.slots <- struct{}{}:
			return nil
		default:
		}
		if len(b.pending) > 0 {
			b.waitOldest()
			if b.failure != nil {
				return b.failure
			}
			continue
		}
		t := time.NewTimer(b.p.ackTimeout)
		select {
		case b.p.slots <- struct{}{}:
			t.Stop()
			return nil
		case <-b.ctx.Done():
			t.Stop()
			return b.ctx.Err()
		case <-t.C:
			return fmt.Errorf("no publish slot free after %s", b.p.ackTimeout)
		}
	}
}

// waitOldest resolves the oldest pending event and releases its slot.
func (b *Batch) waitOldest() {
	in := b.pending[0]
	b.pending = b.pending[1:]
	defer func() { <-b.p.slots }()
	r := &b.results[in.i]

	if b.failure != nil {
		select {
		case ack := <-in.f.Ok():
			setAck(r, ack)
		default:
			r.Status, r.Err = StatusUnavailable, b.failure
		}
		return
	}
	if b.timer == nil {
		b.timer = time.NewTimer(b.p.ackTimeout)
	} else {
		b.timer.Reset(b.p.ackTimeout)
	}
	select {
	case ack := <-in.f.Ok():
		setAck(r, ack)
		return
	case err := <-in.f.Err():
		b.failure = err
	case <-b.timer.C:
		b.failure = fmt.Errorf("no ack after %s: %w", b.p.ackTimeout, jetstream.ErrAsyncPublishTimeout)
	case <-b.ctx.Done():
		b.failure = b.ctx.Err()
	}
	r.Status, r.Err = StatusUnavailable, b.failure
}

func setAck(r *Result, ack *jetstream.PubAck) {
	r.Seq = ack.Sequence
	if ack.Duplicate {
		r.Status = StatusDuplicate
	} else {
		r.Status = StatusAccepted
	}
}
