package projector

import (
	"fmt"
	"hash/maphash"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/schemas"
)

// batch is the unit of work: the messages of one fetch, the rows of their
// events (first occurrence of each id) and the dead letters. Two batches
// are reused for the life of a Run. Of a message only its reply subject
// (its ack subject) is kept, so a batch holds little beyond its rows, and
// what it holds is in its arena: rows, deliveries and id index hold no
// pointers (a dead letter keeps its message, but those are rare).
type batch struct {
	// publish sends an ack-protocol body to a reply subject.
	publish func(subject string, body []byte) error
	text    arena
	msgs    []delivery
	rows    []packedRow
	meta    []rowMeta // parallel to rows
	dead    []deadLetter
	// ids maps the hash of each row's id to the row; ids whose hash an
	// earlier id of the batch took are in collided.
	ids         map[uint64]int32
	collided    map[string]struct{}
	dupsInBatch int
	redelivered int
	// touched is when the messages' ack deadline last started (fetch or
	// InProgress).
	touched time.Time
	// failed: an INSERT attempt of this batch failed, so ClickHouse may
	// hold part of it; stale: the batch was held so long the server may
	// have redelivered it. Either way every id is looked up.
	failed, stale bool

	// scratch space of insertOnce
	checkIDs []string
	keep     []packedRow
}

// JetStream ack protocol: the body published to a message's reply subject.
var (
	ackBody      = []byte("+ACK")
	nakBody      = []byte("-NAK")
	progressBody = []byte("+WPI")
)

func nakDelayBody(d time.Duration) []byte {
	if d <= 0 {
		return nakBody
	}
	return fmt.Appendf(nil, `-NAK {"delay": %d}`, d.Nanoseconds())
}

// delivery is one fetched message; settled once it was acked or nacked.
type delivery struct {
	reply   span // in the batch's arena
	settled bool
}

// rowMeta is what the dedup decision needs beyond the row.
type rowMeta struct {
	delivered uint64 // NumDelivered
	stored    int64  // when the stream stored the message, Unix ns
	skipped   bool   // found in ClickHouse, not inserted
}

// deadLetter keeps its whole message: body and subject go to the
// dead-letter stream.
type deadLetter struct {
	idx    int // in msgs
	msg    jetstream.Msg
	seq    uint64
	code   string
	reason string
}

func newBatch(size int, publish func(subject string, body []byte) error) *batch {
	return &batch{
		publish: publish,
		msgs:    make([]delivery, 0, size),
		rows:    make([]packedRow, 0, size),
		meta:    make([]rowMeta, 0, size),
		ids:     make(map[uint64]int32, size),
	}
}

var idSeed = maphash.MakeSeed()

// firstOf records id as seen and reports whether it was new to the batch.
// Row i, about to be added, has this id.
func (b *batch) firstOf(id string, i int) bool {
	h := maphash.String(idSeed, id)
	j, taken := b.ids[h]
	if !taken {
		b.ids[h] = int32(i)
		return true
	}
	if b.text.field(&b.rows[j], fID) == id {
		return false
	}
	if _, seen := b.collided[id]; seen {
		return false
	}
	if b.collided == nil {
		b.collided = make(map[string]struct{})
	}
	b.collided[id] = struct{}{}
	return true
}

// add decodes and maps one message; now is the batch's projection time.
func (b *batch) add(msg jetstream.Msg, now time.Time) {
	b.msgs = append(b.msgs, delivery{reply: b.text.add(msg.Reply())})
	dead := func(seq uint64, code, reason string) {
		b.dead = append(b.dead, deadLetter{idx: len(b.msgs) - 1, msg: msg, seq: seq, code: code, reason: reason})
	}
	md, err := msg.Metadata()
	if err != nil {
		dead(0, ReasonUnprojectable, "not a JetStream message: "+err.Error())
		return
	}
	if md.NumDelivered > 1 {
		b.redelivered++
	}
	seq := md.Sequence.Stream
	e, err := decode(msg.Data(), now, md.Timestamp)
	if err != nil {
		dead(seq, ReasonInvalidEvent, err.Error())
		return
	}
	r, err := mapEvent(e, seq, now)
	if err != nil {
		dead(seq, ReasonUnprojectable, fmt.Sprintf("event %q (%s): %v", e.ID, e.Type, err))
		return
	}
	if !b.firstOf(r.ID, len(b.rows)) {
		b.dupsInBatch++
		return
	}
	b.rows = append(b.rows, b.text.pack(&r))
	b.meta = append(b.meta, rowMeta{delivered: md.NumDelivered, stored: md.Timestamp.UnixNano()})
}

// keepAlive resets the ack deadline of every unsettled message.
func (b *batch) keepAlive() {
	for i := range b.msgs {
		if !b.msgs[i].settled {
			_ = b.publish(b.text.str(b.msgs[i].reply), progressBody)
		}
	}
	b.touched = time.Now()
}

// ack acks every unsettled message. Lost acks are harmless: the message is
// redelivered with NumDelivered > 1 and found in ClickHouse.
func (b *batch) ack() {
	for i := range b.msgs {
		b.settle(i, ackBody)
	}
}

// nak asks for a redelivery of every unsettled message after delay.
func (b *batch) nak(delay time.Duration) {
	body := nakDelayBody(delay)
	for i := range b.msgs {
		b.settle(i, body)
	}
}

// settle acks or nacks message i unless it was settled already.
func (b *batch) settle(i int, body []byte) {
	if !b.msgs[i].settled {
		_ = b.publish(b.text.str(b.msgs[i].reply), body)
		b.msgs[i].settled = true
	}
}

// reset empties b for reuse, dropping every reference to its messages.
func (b *batch) reset() {
	b.msgs = b.msgs[:0]
	b.rows = b.rows[:0]
	b.meta = b.meta[:0]
	clear(b.dead)
	b.dead = b.dead[:0]
	clear(b.ids)
	b.collided = nil
	b.keep = b.keep[:0]
	clear(b.checkIDs)
	b.checkIDs = b.checkIDs[:0]
	b.text.reset()
	b.dupsInBatch, b.redelivered = 0, 0
	b.failed, b.stale = false, false
	b.touched = time.Time{}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// decode validates a message body as of now or, if later, the time the
// stream stored it: an event accepted then stays valid (its time was not
// too far in the future then) whatever this machine's clock says.
func decode(data []byte, now, stored time.Time) (*schemas.Event, error) {
	return schemas.DecodeAt(data, later(now, stored))
}
