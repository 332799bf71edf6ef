package publish_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// jobCompleted returns a valid job.completed event.
func jobCompleted(id string) *schemas.Event {
	now := time.Now().UTC().Truncate(time.Millisecond)
	data := fmt.Sprintf(`{"job_id":"job-%s","user_id":"u1","model":"whisper-large-v3","language":"en","created_at":%q,"media_duration_seconds":61.5,"processing_ms":4200}`,
		id, now.Add(-time.Minute).Format(time.RFC3339Nano))
	return &schemas.Event{
		SpecVersion: schemas.SpecVersion,
		ID:          id,
		Type:        schemas.TypeJobCompleted,
		Source:      "/platform/jobs",
		Time:        now,
		ResellerID:  "r1",
		OrgID:       "o1",
		Data:        json.RawMessage(data),
	}
}

func setup(t *testing.T) (jetstream.JetStream, func()) {
	t.Helper()
	url, s := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	return js, func() { s.Shutdown(); s.WaitForShutdown() }
}

func TestPublishAcceptedThenDuplicate(t *testing.T) {
	js, _ := setup(t)
	p := publish.New(js, publish.Options{})
	ctx := t.Context()
	e := jobCompleted("evt-1")

	steps := []struct {
		name string
		want publish.Status
	}{
		{"first", publish.StatusAccepted},
		{"again", publish.StatusDuplicate},
	}
	for _, st := range steps {
		r, err := p.Publish(ctx, e)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if r.Status != st.want || r.ID != "evt-1" || r.Seq != 1 {
			t.Errorf("%s: %+v, want %s seq 1", st.name, r, st.want)
		}
	}

	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "tally.events.r1.o1.job.completed" || msg.Header.Get(jetstream.MsgIDHeader) != "evt-1" {
		t.Errorf("stored subject %q, msg id %q", msg.Subject, msg.Header.Get(jetstream.MsgIDHeader))
	}
	back, err := schemas.Decode(msg.Data)
	if err != nil {
		t.Fatalf("stored body does not decode: %v", err)
	}
	if back.ID != "evt-1" {
		t.Errorf("stored id %q", back.ID)
	}
}

func TestPublishBatch(t *testing.T) {
	js, _ := setup(t)
	p := publish.New(js, publish.Options{MaxPending: 16})
	ctx := t.Context()

	noID := jobCompleted("x")
	noID.ID = ""
	future := jobCompleted("future")
	future.Time = time.Now().Add(48 * time.Hour)

	var events []*schemas.Event
	for i := range 100 {
		events = append(events, jobCompleted(fmt.Sprintf("b-%03d", i)))
	}
	events[10] = noID
	events[20] = future
	events[30] = events[29] // same id twice in one batch
	events[40] = nil

	rs, err := p.PublishBatch(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(events) {
		t.Fatalf("%d results for %d events", len(rs), len(events))
	}
	counts := map[publish.Status]int{}
	for i, r := range rs {
		counts[r.Status]++
		if r.Index != i {
			t.Errorf("result %d has index %d", i, r.Index)
		}
	}
	if want := map[publish.Status]int{publish.StatusAccepted: 96, publish.StatusDuplicate: 1, publish.StatusRejected: 3}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
	if rs[30].Status != publish.StatusDuplicate || rs[30].Seq != rs[29].Seq {
		t.Errorf("repeat in batch: %+v (first %+v)", rs[30], rs[29])
	}

	tests := []struct {
		name  string
		index int
		field string
	}{
		{"missing id", 10, "id"},
		{"time in the future", 20, "time"},
		{"nil event", 40, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rs[tt.index]
			var ve *schemas.ValidationError
			if r.Status != publish.StatusRejected || !errors.As(r.Err, &ve) {
				t.Fatalf("result %+v, want rejected with *schemas.ValidationError", r)
			}
			if ve.Index != tt.index {
				t.Errorf("ValidationError.Index = %d, want %d", ve.Index, tt.index)
			}
			found := false
			for _, pr := range ve.Problems {
				found = found || pr.Field == tt.field
			}
			if !found {
				t.Errorf("problems %v do not name field %q", ve.Problems, tt.field)
			}
		})
	}

	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 96 {
		t.Errorf("stream holds %d messages, want 96", n)
	}
}

func TestPublishRaw(t *testing.T) {
	js, _ := setup(t)
	p := publish.New(js, publish.Options{})
	e := jobCompleted("raw-1")
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := p.PublishRaw(t.Context(), []publish.RawEvent{{Event: e, Body: body}, {Event: e}})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Status != publish.StatusAccepted || rs[1].Status != publish.StatusRejected {
		t.Errorf("results %+v", rs)
	}
	s, err := js.Stream(t.Context(), stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(t.Context(), rs[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != string(body) {
		t.Errorf("stored %s, want the bytes given %s", msg.Data, body)
	}
}

func TestPublishUnavailable(t *testing.T) {
	js, shutdown := setup(t)
	const ackTimeout = 20 * time.Second
	p := publish.New(js, publish.Options{AckTimeout: ackTimeout})
	ctx := t.Context()
	if _, err := p.Publish(ctx, jobCompleted("before")); err != nil {
		t.Fatal(err)
	}
	shutdown()
	// Until the client has seen the connection drop, a publish is only
	// buffered and waits for its ack like any other.
	for deadline := time.Now().Add(10 * time.Second); js.Conn().IsConnected(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the server going away")
		}
	}

	start := time.Now()
	rs, err := p.PublishBatch(ctx, []*schemas.Event{jobCompleted("after-1"), jobCompleted("after-2"), {ID: "bad"}})
	if !errors.Is(err, publish.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d >= ackTimeout {
		t.Errorf("took %s: waited for the ack timeout instead of failing on the lost connection", d)
	}
	want := []publish.Status{publish.StatusUnavailable, publish.StatusUnavailable, publish.StatusRejected}
	for i, r := range rs {
		if r.Status != want[i] {
			t.Errorf("result %d: %s, want %s", i, r.Status, want[i])
		}
	}
	if _, err := p.Publish(ctx, jobCompleted("after-3")); !errors.Is(err, publish.ErrUnavailable) {
		t.Errorf("Publish: %v, want ErrUnavailable", err)
	}
}

func TestPublishNoStream(t *testing.T) {
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	p := publish.New(js, publish.Options{AckTimeout: 2 * time.Second})
	r, err := p.Publish(t.Context(), jobCompleted("nostream"))
	if !errors.Is(err, publish.ErrUnavailable) || r.Status != publish.StatusUnavailable {
		t.Fatalf("publish without stream: %+v, %v; want unavailable", r, err)
	}
}

func TestPublishConcurrentSmallWindow(t *testing.T) {
	js, _ := setup(t)
	// Several calls share 8 slots: none may deadlock holding slots.
	p := publish.New(js, publish.Options{MaxPending: 8})
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var events []*schemas.Event
			for i := range 500 {
				events = append(events, jobCompleted(fmt.Sprintf("g%d-%d", g, i)))
			}
			rs, err := p.PublishBatch(t.Context(), events)
			if err == nil {
				for _, r := range rs {
					if r.Status != publish.StatusAccepted {
						err = fmt.Errorf("event %d: %s %v", r.Index, r.Status, r.Err)
						break
					}
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
