// Package e2e drives events through every stage of tally as deployed:
// HTTP ingest → JetStream → projector → ClickHouse read models, and compares
// each read model with a ground truth computed in the test.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/demo"
	"github.com/tallyhq/tally/ingest"
	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

const ingestKey = "e2e-ingest-key-0123456789"

// dedupWindow is tiny so the test can republish events after it has passed.
const dedupWindow = time.Second

type ingestResponse struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Results    []struct {
		Index  int    `json:"index"`
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  *struct {
			Field  string `json:"field"`
			Reason string `json:"reason"`
		} `json:"error"`
	} `json:"results"`
}

func TestPipelineEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	url, _ := testenv.NATS(t)
	nc, js := testenv.JetStream(t, url)
	ch := testenv.ClickHouse(t)
	if err := stream.Ensure(ctx, js, stream.Config{DedupWindow: dedupWindow}); err != nil {
		t.Fatal(err)
	}

	in, err := ingest.New(ingest.Config{Keys: []string{ingestKey}}, js, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pcfg := projector.DefaultConfig()
	pcfg.DedupWindow = dedupWindow
	pcfg.BatchSize = 2000
	pr, err := projector.New(pcfg, js, ch.Conn, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stages := map[string]func(context.Context) error{
		"ingest":    func(ctx context.Context) error { return in.Serve(ctx, ln) },
		"projector": pr.Run,
	}
	for name, run := range stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	endpoint := "http://" + ln.Addr().String() + "/v1/events"

	events := generate(t)
	unique := uniqueEvents(events)
	want := computeTruth(unique)
	t.Logf("generated %d events, %d unique ids, %d jobs, %d usage rows", len(events), len(unique), len(want.jobs), len(want.usage))

	// Out of order: the whole stream shuffled, so job.completed often comes
	// before job.created and late events land among fresh ones.
	rng := rand.New(rand.NewPCG(7, 11))
	shuffled := append([]*schemas.Event(nil), events...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	// The last tenth is held back to be published three times below.
	// Their ids must not occur in the main part, or the dedup window's
	// edge would make the counts below depend on timing.
	main := shuffled[:len(shuffled)*9/10]
	inMain := map[string]bool{}
	for _, e := range main {
		inMain[e.ID] = true
	}
	var held []*schemas.Event
	for _, e := range shuffled[len(main):] {
		if inMain[e.ID] {
			main = append(main, e)
			continue
		}
		held = append(held, e)
	}
	var accepted, duplicates, rejected int
	for start := 0; start < len(main); start += 500 {
		batch := main[start:min(start+500, len(main))]
		body := ndjson(t, batch)
		// Every fifth batch carries an invalid event: rejected with field and
		// reason while the rest of the batch lands.
		invalid := start/500%5 == 0
		if invalid {
			body = append(body, []byte(`{"specversion":"1.0","id":"bad-`+fmt.Sprint(start)+`","type":"job.completed","source":"e2e","time":"2026-01-01T00:00:00Z","resellerid":"r","orgid":"o","data":{"job_id":"j","user_id":"u","model":"m","language":"en","created_at":"2026-01-01T00:00:00Z","processing_ms":5}}`+"\n")...)
		}
		code, resp := post(t, endpoint, body)
		if invalid {
			if code != http.StatusMultiStatus {
				t.Fatalf("batch with an invalid event: status %d, want 207", code)
			}
			last := resp.Results[len(resp.Results)-1]
			if last.Status != "rejected" || last.Error == nil || last.Error.Field != "data.media_duration_seconds" {
				t.Fatalf("invalid event result = %+v, want rejected on data.media_duration_seconds", last)
			}
		} else if code != http.StatusOK {
			t.Fatalf("batch: status %d, want 200", code)
		}
		accepted += resp.Accepted
		duplicates += resp.Duplicates
		rejected += resp.Rejected
	}
	if accepted+duplicates != len(main) {
		t.Fatalf("accepted %d + duplicates %d != %d events sent", accepted, duplicates, len(main))
	}
	if rejected != (len(main)+2499)/2500 {
		t.Fatalf("rejected %d, want one per fifth batch", rejected)
	}

	// The held-back events, then the same body again at once: inside the
	// dedup window JetStream drops every one of them.
	body := ndjson(t, held)
	code, first := post(t, endpoint, body)
	if code != http.StatusOK || first.Accepted == 0 {
		t.Fatalf("held-back events: status %d, accepted %d", code, first.Accepted)
	}
	code, resp := post(t, endpoint, body)
	if code != http.StatusOK || resp.Duplicates != len(held) {
		t.Fatalf("republish inside the window: status %d, %d duplicates of %d", code, resp.Duplicates, len(held))
	}
	// Beyond the window JetStream has forgotten them, so they reach the
	// stream again and the projector must drop them.
	time.Sleep(2 * dedupWindow)
	code, resp = post(t, endpoint, body)
	if code != http.StatusOK || resp.Accepted == 0 {
		t.Fatalf("republish beyond the window: status %d, accepted %d (JetStream should have forgotten them)", code, resp.Accepted)
	}

	// A poison message that bypassed ingest: it must land in the dead-letter
	// stream and the pipeline must keep going.
	if err := nc.Publish("tally.events.r1.o1.job.completed", []byte(`{"id": "poison", not json`)); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 90*time.Second, "every unique event projected", func() (bool, string) {
		var n uint64
		if err := ch.Conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
			return false, err.Error()
		}
		info, err := js.Consumer(ctx, stream.EventsStream, pcfg.Consumer)
		if err != nil {
			return false, err.Error()
		}
		ci, err := info.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return n >= uint64(len(unique)) && ci.NumPending == 0 && ci.NumAckPending == 0,
			fmt.Sprintf("%d/%d rows, pending %d, ack pending %d", n, len(unique), ci.NumPending, ci.NumAckPending)
	})

	checkReadModels(t, ctx, ch.Conn, want, len(unique))
	checkDeadLetter(t, ctx, js)
}

// generate runs the demo generator on a fixed clock until it has emitted its
// backfill and caught up: a few days of realistic traffic with duplicates
// and late events.
func generate(t *testing.T) []*schemas.Event {
	start := time.Date(2026, 11, 18, 14, 0, 0, 0, time.UTC)
	gen := demo.New(demo.Config{
		Seed: 42, Resellers: 3, OrgsPerReseller: 8, Backfill: 7 * 24 * time.Hour, CatchUp: time.Hour,
		Speed: demo.MaxSpeed, Rate: 1e9, Clock: func() time.Time { return start },
	}, slog.New(slog.DiscardHandler))
	var (
		mu     sync.Mutex
		events []*schemas.Event
		last   = time.Now()
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- gen.Run(ctx, func(_ context.Context, batch []*schemas.Event) error {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, batch...)
			last = time.Now()
			return nil
		})
	}()
	for {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		quiet := len(events) > 0 && time.Since(last) > 700*time.Millisecond
		mu.Unlock()
		if quiet {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return events
}

func uniqueEvents(events []*schemas.Event) []*schemas.Event {
	seen := make(map[string]bool, len(events))
	var out []*schemas.Event
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

func ndjson(t *testing.T, events []*schemas.Event) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range events {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func post(t *testing.T, url string, body []byte) (int, ingestResponse) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ingestKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out ingestResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode ingest response %q: %v", raw, err)
	}
	return res.StatusCode, out
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var state string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, state)
}

func checkDeadLetter(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	s, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "tally.dlq.>")
	if err != nil {
		t.Fatalf("no dead letter for the poison message: %v", err)
	}
	if !strings.Contains(string(msg.Data), "poison") {
		t.Fatalf("dead letter body = %q, want the poison message", msg.Data)
	}
	if reason := msg.Header.Get("Tally-Reason"); reason == "" {
		t.Fatalf("dead letter has no Tally-Reason header: %v", msg.Header)
	}
}
