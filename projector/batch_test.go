package projector

import (
	"context"
	"errors"
	"fmt"
	"github.com/tallyhq/tally/schemas"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg is a jetstream.Msg from a fetch. The batch settles messages by
// publishing to their reply subjects, which acks records.
type fakeMsg struct {
	data  []byte
	meta  *jetstream.MsgMetadata
	reply string
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta == nil {
		return nil, errors.New("no metadata")
	}
	return m.meta, nil
}
func (m *fakeMsg) Data() []byte                       { return m.data }
func (m *fakeMsg) Headers() nats.Header               { return nil }
func (m *fakeMsg) Subject() string                    { return "tally.events.r1.o1.user.added" }
func (m *fakeMsg) Reply() string                      { return m.reply }
func (m *fakeMsg) Ack() error                         { panic("settled through the reply subject") }
func (m *fakeMsg) DoubleAck(context.Context) error    { panic("settled through the reply subject") }
func (m *fakeMsg) Nak() error                         { panic("settled through the reply subject") }
func (m *fakeMsg) NakWithDelay(time.Duration) error   { panic("settled through the reply subject") }
func (m *fakeMsg) InProgress() error                  { panic("settled through the reply subject") }
func (m *fakeMsg) Term() error                        { panic("settled through the reply subject") }
func (m *fakeMsg) TermWithReason(reason string) error { panic("settled through the reply subject") }

var replies atomic.Int64

func newFakeMsg(seq, delivered uint64, data string) *fakeMsg {
	return &fakeMsg{data: []byte(data), reply: fmt.Sprintf("$JS.ACK.test.%d", replies.Add(1)), meta: &jetstream.MsgMetadata{
		Sequence: jetstream.SequencePair{Stream: seq, Consumer: seq}, NumDelivered: delivered, Timestamp: time.Now(),
	}}
}

// acks records ack-protocol bodies per reply subject.
type acks map[string][]string

func (a acks) publish(subject string, body []byte) error {
	a[subject] = append(a[subject], string(body))
	return nil
}

func userAdded(id string) string { return userAddedAt(id, time.Now()) }

func userAddedAt(id string, at time.Time) string {
	return `{"specversion":"1.0","id":"` + id + `","type":"user.added","source":"s","time":"` +
		at.UTC().Format(time.RFC3339Nano) + `","resellerid":"r1","orgid":"o1","data":{"user_id":"u1"}}`
}

// storedIn returns m with its stream timestamp moved by d.
func storedIn(m *fakeMsg, d time.Duration) *fakeMsg {
	m.meta.Timestamp = m.meta.Timestamp.Add(d)
	return m
}

func TestBatchAdd(t *testing.T) {
	tests := []struct {
		name        string
		msgs        []*fakeMsg
		wantRows    []string // ids
		wantDead    []string // codes
		dupsInBatch int
		redelivered int
	}{
		{
			name:     "distinct events",
			msgs:     []*fakeMsg{newFakeMsg(1, 1, userAdded("a")), newFakeMsg(2, 1, userAdded("b"))},
			wantRows: []string{"a", "b"},
		},
		{
			name: "repeated id keeps the first",
			msgs: []*fakeMsg{newFakeMsg(1, 1, userAdded("a")), newFakeMsg(2, 1, userAdded("b")),
				newFakeMsg(3, 1, userAdded("a")), newFakeMsg(4, 2, userAdded("a"))},
			wantRows:    []string{"a", "b"},
			dupsInBatch: 2,
			redelivered: 1,
		},
		{
			name:     "invalid JSON is a dead letter",
			msgs:     []*fakeMsg{newFakeMsg(1, 1, `{"specversion":`), newFakeMsg(2, 1, userAdded("b"))},
			wantRows: []string{"b"},
			wantDead: []string{ReasonInvalidEvent},
		},
		{
			name:     "event outside the DateTime range is a dead letter",
			msgs:     []*fakeMsg{newFakeMsg(1, 1, strings.Replace(userAdded("a"), time.Now().UTC().Format("2006-"), "1960-", 1))},
			wantDead: []string{ReasonInvalidEvent},
		},
		{
			name: "future time judged by the later of now and the stream's clock",
			msgs: []*fakeMsg{
				storedIn(newFakeMsg(1, 1, userAddedAt("a", time.Now().Add(schemas.MaxClockSkew+30*time.Second))), time.Minute),
				newFakeMsg(2, 1, userAddedAt("b", time.Now().Add(2*time.Hour))),
			},
			wantRows: []string{"a"},
			wantDead: []string{ReasonInvalidEvent},
		},
		{
			name:     "message without metadata is a dead letter",
			msgs:     []*fakeMsg{{data: []byte(userAdded("a")), reply: "$JS.ACK.test.none"}},
			wantDead: []string{ReasonUnprojectable},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := acks{}
			b := newBatch(10, sent.publish)
			for _, m := range tc.msgs {
				b.add(m, time.Now())
			}
			var ids, codes []string
			for i := range b.rows {
				ids = append(ids, b.text.field(&b.rows[i], fID))
			}
			for _, d := range b.dead {
				codes = append(codes, d.code)
				if d.reason == "" {
					t.Errorf("dead letter %s without reason", d.code)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.wantRows, ",") {
				t.Errorf("rows = %v, want %v", ids, tc.wantRows)
			}
			if strings.Join(codes, ",") != strings.Join(tc.wantDead, ",") {
				t.Errorf("dead letters = %v, want %v", codes, tc.wantDead)
			}
			if b.dupsInBatch != tc.dupsInBatch || b.redelivered != tc.redelivered {
				t.Errorf("dupsInBatch, redelivered = %d, %d; want %d, %d", b.dupsInBatch, b.redelivered, tc.dupsInBatch, tc.redelivered)
			}
			if len(b.msgs) != len(tc.msgs) || len(b.meta) != len(b.rows) {
				t.Errorf("msgs %d (want %d), meta %d rows %d", len(b.msgs), len(tc.msgs), len(b.meta), len(b.rows))
			}
			b.keepAlive()
			b.ack()
			b.ack()
			b.nak(time.Second)
			for i, m := range tc.msgs {
				if got := strings.Join(sent[m.reply], " "); got != "+WPI +ACK" {
					t.Errorf("message %d got %q, want in progress then one ack", i, got)
				}
			}
			b.reset()
			if len(b.msgs)+len(b.rows)+len(b.meta)+len(b.dead)+len(b.ids) != 0 || b.dupsInBatch != 0 {
				t.Errorf("reset left state behind")
			}
		})
	}
}

func TestMustCheck(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	p := &Projector{window: 2 * time.Minute, hwm: 100}
	tests := []struct {
		name      string
		seq       uint64
		delivered uint64
		eventAge  time.Duration // stored time minus event time
		want      bool
	}{
		{"fresh first delivery", 101, 1, time.Second, false},
		{"redelivered", 101, 2, time.Second, true},
		{"stored later than the dedup window after its time", 101, 1, 3 * time.Minute, true},
		{"exactly the window less the clock skew", 101, 1, 2*time.Minute - schemas.MaxClockSkew, false},
		{"past the window less the clock skew", 101, 1, 2*time.Minute - schemas.MaxClockSkew + time.Millisecond, true},
		{"at or below the projected high-water mark", 100, 1, time.Second, true},
		{"future-dated", 101, 1, -time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &packedRow{rowNumbers: rowNumbers{StreamSeq: tc.seq, TimeMS: uint64(now.Add(-tc.eventAge).UnixMilli())}}
			m := &rowMeta{delivered: tc.delivered, stored: now.UnixNano()}
			if got := p.mustCheck(r, m); got != tc.want {
				t.Errorf("mustCheck = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 10*time.Second
	tests := []struct {
		name   string
		n      int
		center time.Duration
	}{
		{"first retry", 1, lo},
		{"doubles", 4, 800 * time.Millisecond},
		{"capped", 30, hi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				d := backoff(lo, hi, tc.n)
				if d < tc.center*3/4 || d > tc.center*5/4 {
					t.Fatalf("backoff(%d) = %s, want %s ±25%%", tc.n, d, tc.center)
				}
			}
		})
	}
}

func TestParseFailpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"", 0, false},
		{"crash-after-insert:0.3", 0.3, false},
		{"crash-after-insert:1", 1, false},
		{"crash-after-insert:1.5", 0, true},
		{"crash-after-insert:-0.1", 0, true},
		{"crash-after-insert", 0, true},
		{"crash-before-insert:0.5", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			fp, err := parseFailpoint(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if fp.crashAfterInsert != tc.want {
				t.Errorf("probability = %v, want %v", fp.crashAfterInsert, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero config takes defaults", func(c *Config) { *c = Config{} }, ""},
		{"bigger batch after DefaultConfig", func(c *Config) { c.BatchSize = 200_000 }, ""},
		{"consumer with a dot", func(c *Config) { c.Consumer = "a.b" }, "consumer"},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, "batch size"},
		{"max ack pending below two batches", func(c *Config) { c.BatchSize = 100; c.MaxAckPending = 150 }, "max ack pending"},
		{"insert timeout above half the ack wait", func(c *Config) { c.AckWait = 10 * time.Second; c.InsertTimeout = 6 * time.Second }, "insert timeout"},
		{"backoff max below min", func(c *Config) { c.RetryMin = time.Second; c.RetryMax = time.Millisecond }, "backoff"},
		{"negative dedup window", func(c *Config) { c.DedupWindow = -time.Second }, "dedup window"},
		{"linger below the batch wait", func(c *Config) { c.BatchWait = time.Second; c.BatchLinger = 500 * time.Millisecond }, "batch linger"},
		{"linger above a quarter of the ack wait", func(c *Config) {
			c.AckWait = 4 * time.Second
			c.InsertTimeout = time.Second
			c.BatchLinger = 2 * time.Second
		}, "batch linger"},
		{"short ack wait shortens the default linger", func(c *Config) { c.AckWait = 2 * time.Second; c.InsertTimeout = time.Second }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestNakDelayBody(t *testing.T) {
	tests := []struct {
		delay time.Duration
		want  string
	}{
		{0, "-NAK"},
		{1500 * time.Millisecond, `-NAK {"delay": 1500000000}`},
	}
	for _, tc := range tests {
		t.Run(tc.delay.String(), func(t *testing.T) {
			if got := string(nakDelayBody(tc.delay)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
