package projector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// running is a projector started by startProjector.
type running struct {
	reg  *prometheus.Registry
	logs *syncBuffer
	stop func() error
}

// startProjector runs a projector until stop is called (or the test ends)
// and returns its metrics registry and logs.
func startProjector(t testing.TB, cfg Config, js jetstream.JetStream, conn driver.Conn) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := New(cfg, js, conn, log, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return 30s after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{reg: reg, logs: logs, stop: stop}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count returns how many log lines have the message msg.
func (s *syncBuffer) count(msg string) int {
	return strings.Count(s.String(), `"msg":"`+msg+`"`)
}

// metric returns the value of a counter or gauge (with label value lv for
// the first label, if given).
func metric(t testing.TB, reg *prometheus.Registry, name string, lv ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(lv) > 0 && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != lv[0]) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// histogram returns the sample count and sum of a histogram.
func histogram(t testing.TB, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("histogram %s not found", name)
	return 0, 0
}

// waitDrained waits until the consumer has delivered and got acks for
// every message of the stream.
func waitDrained(t testing.TB, ctx context.Context, js jetstream.JetStream, consumer string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, stream.EventsStream, consumer)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
				return
			}
			if err == nil {
				last = fmt.Sprintf("pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("consumer %s not drained after %s: %s", consumer, timeout, last)
}

// newStreams starts NATS and creates tally's streams with the given dedup
// window.
func newStreams(t testing.TB, dedup time.Duration) (string, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	url, _ := testenv.NATS(t)
	nc, js := testenv.JetStream(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, stream.Config{DedupWindow: dedup}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	return url, nc, js
}

// publishRaw publishes body as-is on subject with Nats-Msg-Id id.
func publishRaw(t testing.TB, ctx context.Context, js jetstream.JetStream, subject, id string, body []byte) {
	t.Helper()
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// deadLetters reads every message of the dead-letter stream.
func deadLetters(t testing.TB, ctx context.Context, js jetstream.JetStream) []*nats.Msg {
	t.Helper()
	s, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatalf("dlq stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("dlq info: %v", err)
	}
	var out []*nats.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("dlq message %d: %v", seq, err)
		}
		out = append(out, &nats.Msg{Subject: raw.Subject, Data: raw.Data, Header: raw.Header})
	}
	return out
}

// invalidVariant returns the body of e broken so that schemas.Decode
// rejects it, and the field the rejection must name.
func invalidVariants(t testing.TB, events []*schemas.Event) (bodies map[string][]byte, fields map[string]string) {
	t.Helper()
	bodies, fields = map[string][]byte{}, map[string]string{}
	breakers := []struct {
		typ, field string
		mutate     func(m map[string]any)
	}{
		{schemas.TypeJobCompleted, "data.media_duration_seconds", func(m map[string]any) {
			delete(m["data"].(map[string]any), "media_duration_seconds")
		}},
		{schemas.TypeSubscriptionChanged, "data.currency", func(m map[string]any) { m["data"].(map[string]any)["currency"] = "euro" }},
		{schemas.TypeUserAdded, "orgid", func(m map[string]any) { delete(m, "orgid") }},
		{schemas.TypeInvoicePaid, "data.amount_minor", func(m map[string]any) { m["data"].(map[string]any)["amount_minor"] = -1 }},
	}
	for _, br := range breakers {
		for _, e := range events {
			if e.Type != br.typ {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(body(t, e), &m); err != nil {
				t.Fatal(err)
			}
			id := "invalid-" + strings.ReplaceAll(br.field, ".", "-")
			m["id"] = id
			br.mutate(m)
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := schemas.Decode(raw); err == nil {
				t.Fatalf("broken %s event still decodes: %s", br.typ, raw)
			}
			bodies[id], fields[id] = raw, br.field
			break
		}
	}
	return bodies, fields
}

// TestProjectEverything publishes a generated event set of every type (out
// of order, days-late jobs, repeats inside and after the dedup window,
// a poison message and invalid events) and compares every read model with
// the ground truth computed from the events.
func TestProjectEverything(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, time.Second)
	ch := testenv.ClickHouse(t)

	events := generate(genConfig{Seed: 1, Resellers: 3, Orgs: 5, Jobs: 3000, Now: time.Now(), LateEvery: 20})
	half := len(events) / 2
	publishEvents(t, ctx, js, events[:half-50])
	publishEvents(t, ctx, js, events[half-50:half])
	if dups := publishEvents(t, ctx, js, events[half-50:half]); dups != 50 {
		t.Fatalf("republished inside the dedup window: JetStream reported %d duplicates, want 50", dups)
	}

	cfg := Config{BatchSize: 500, BatchWait: 50 * time.Millisecond, DedupWindow: time.Second}
	pr := startProjector(t, cfg, js, ch.Conn)

	// A poison message and invalid events amid valid ones.
	publishRaw(t, ctx, js, "tally.events.r0.o0-0.job.completed", "poison-1", []byte(`{"specversion":"1.0","id":"poison-1",`))
	bad, badFields := invalidVariants(t, events)
	i := half
	for id, raw := range bad {
		publishEvents(t, ctx, js, events[i:i+20])
		i += 20
		publishRaw(t, ctx, js, "tally.events.r0.o0-0.x", id, raw)
	}
	publishEvents(t, ctx, js, events[i:])

	// Repeats after the dedup window reach the stream; the projector must
	// find them in ClickHouse. Half of them are of the first half
	// (projected by now), half of the second (maybe in flight).
	time.Sleep(1500 * time.Millisecond)
	var repeats []*schemas.Event
	for j := 0; j < len(events); j += 31 {
		repeats = append(repeats, events[j])
	}
	if dups := publishEvents(t, ctx, js, repeats); dups != 0 {
		t.Fatalf("republished after the dedup window: JetStream dropped %d, want 0", dups)
	}

	waitDrained(t, ctx, js, DefaultConsumer, 60*time.Second)
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	checkReadModels(t, ctx, ch.Conn, events)

	want := map[string]float64{
		resultInserted:   float64(len(events)),
		resultDuplicate:  float64(len(repeats)),
		resultDeadLetter: float64(1 + len(bad)),
	}
	for result, n := range want {
		if got := metric(t, pr.reg, "tally_projector_events_total", result); got != n {
			t.Errorf("tally_projector_events_total{result=%q} = %v, want %v", result, got, n)
		}
	}

	dl := deadLetters(t, ctx, js)
	if len(dl) != 1+len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dl), 1+len(bad))
	}
	for _, m := range dl {
		reason := m.Header.Get(stream.HeaderReason)
		var e struct{ ID string }
		_ = json.Unmarshal(m.Data, &e)
		switch {
		case m.Subject == stream.DLQPrefix+ReasonInvalidEvent && bytes.Contains(m.Data, []byte("poison-1")):
			if !strings.Contains(reason, "JSON") {
				t.Errorf("poison message reason %q does not say the JSON is invalid", reason)
			}
		case m.Subject == stream.DLQPrefix+ReasonInvalidEvent && badFields[e.ID] != "":
			if !strings.Contains(reason, e.ID) || !strings.Contains(reason, badFields[e.ID]) {
				t.Errorf("dead letter %s: reason %q does not name the event and field %s", e.ID, reason, badFields[e.ID])
			}
			if !bytes.Equal(m.Data, bad[e.ID]) {
				t.Errorf("dead letter %s: body changed", e.ID)
			}
		default:
			t.Errorf("unexpected dead letter on %s: %q %s", m.Subject, reason, m.Data)
		}
		if m.Header.Get(stream.HeaderOriginalSubject) == "" || m.Header.Get(stream.HeaderStreamSeq) == "" {
			t.Errorf("dead letter %s lacks original subject or stream seq headers", m.Subject)
		}
	}
	if n := pr.logs.count("dead letter"); n != 1+len(bad) {
		t.Errorf("%d dead-letter warnings logged, want %d", n, 1+len(bad))
	}
}

// TestHeavyStreamBatchesLinger publishes a steady stream that brings far
// less than a batch per BatchWait but more than a tenth of BatchSize over
// a few: the batches must keep filling while it flows (ClickHouse gets few,
// large INSERTs), and once it stops the last batch must go at once, not
// after BatchLinger.
func TestHeavyStreamBatchesLinger(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, 0)
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 5, Resellers: 2, Orgs: 4, Jobs: 2000, Now: time.Now()})

	cfg := Config{BatchSize: 2000, BatchWait: 200 * time.Millisecond, BatchLinger: 30 * time.Second, AckWait: 2 * time.Minute}
	pr := startProjector(t, cfg, js, ch.Conn)
	for i := 0; i < len(events); i += 50 {
		publishEvents(t, ctx, js, events[i:min(i+50, len(events))])
		time.Sleep(15 * time.Millisecond)
	}
	// Far less than BatchLinger: the last batch did not linger.
	waitDrained(t, ctx, js, DefaultConsumer, 15*time.Second)
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReadModels(t, ctx, ch.Conn, events)

	batches, sum := histogram(t, pr.reg, "tally_projector_batch_size")
	if sum != float64(len(events)) {
		t.Fatalf("batches hold %v events, want %d", sum, len(events))
	}
	// One BatchWait brings a few hundred events, so batches that did not
	// linger would be many; lingering ones are full but the last (and the
	// first, if its first fetch was light).
	if most := (len(events)+cfg.BatchSize-1)/cfg.BatchSize + 1; batches > uint64(most) {
		t.Errorf("%d batches of %.0f events on average, want at most %d: while the stream flows they should fill up to %d",
			batches, sum/float64(batches), most, cfg.BatchSize)
	}
}

// TestEventsColumns checks that the projector writes every column of the
// migrated events table.
func TestEventsColumns(t *testing.T) {
	ch := testenv.ClickHouse(t)
	got := queryLines(t, t.Context(), ch.Conn,
		"SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events'")
	var want []string
	for _, c := range eventColumns {
		want = append(want, c.name)
	}
	slices.Sort(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events columns\n got %v\nwant %v", got, want)
	}
}

// TestExistingIDs looks up more ids than fit one query: the lookup is
// chunked and finds exactly the ids ClickHouse holds.
func TestExistingIDs(t *testing.T) {
	ctx := t.Context()
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 10, Resellers: 2, Orgs: 3, Jobs: 1000, Now: time.Now()})
	stored := events[:2*lookupChunk+500]
	var (
		rows []packedRow
		a    arena
	)
	for i, e := range stored {
		r, err := mapEvent(e, uint64(i+1), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, a.pack(&r))
	}
	ib, err := ch.Conn.PrepareBatch(ctx, insertEventsSQL)
	if err != nil {
		t.Fatal(err)
	}
	if err := appendRows(ib, rows, &a, &colBuffers{}); err != nil {
		t.Fatal(err)
	}
	if err := ib.Send(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	found, err := existingIDs(ctx, ch.Conn, ids)
	if err != nil {
		t.Fatalf("existingIDs: %v", err)
	}
	if len(found) != len(stored) {
		t.Errorf("found %d ids, want %d", len(found), len(stored))
	}
	for _, e := range stored {
		if _, ok := found[e.ID]; !ok {
			t.Fatalf("id %s not found", e.ID)
		}
	}
	if seq, err := maxStreamSeq(ctx, ch.Conn); err != nil || seq != uint64(len(stored)) {
		t.Errorf("maxStreamSeq = %d, %v; want %d", seq, err, len(stored))
	}
}
