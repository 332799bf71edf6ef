package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/ingest"
	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

const testKey = "test-key-0123456789abcdef"

// env is a running ingest on a real embedded JetStream.
type env struct {
	url string
	js  jetstream.JetStream
	srv *server.Server
	reg *prometheus.Registry
}

func start(t *testing.T, cfg ingest.Config) *env {
	t.Helper()
	natsURL, srv := testenv.NATS(t)
	_, js := testenv.JetStream(t, natsURL)
	if err := stream.Ensure(t.Context(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Keys == nil {
		cfg.Keys = []string{"another-key-0123456789", testKey}
	}
	if cfg.Publish.AckTimeout == 0 {
		cfg.Publish.AckTimeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	in, err := ingest.New(cfg, js, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{url: "http://" + ln.Addr().String(), js: js, srv: srv, reg: reg}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) post(t *testing.T, contentType, key string, body string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// storedIDs reads every event in the stream, checking each body is
// compact JSON, and returns their ids in stream order.
func (e *env) storedIDs(t *testing.T) []string {
	t.Helper()
	s, err := e.js.Stream(t.Context(), stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	n := s.CachedInfo().State.Msgs
	if n == 0 {
		return nil
	}
	cons, err := e.js.OrderedConsumer(t.Context(), stream.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for uint64(len(ids)) < n {
		batch, err := cons.Fetch(int(n)-len(ids), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var compact bytes.Buffer
			if err := json.Compact(&compact, m.Data()); err != nil || !bytes.Equal(compact.Bytes(), m.Data()) {
				t.Errorf("stored body is not compact JSON: %s", m.Data())
			}
			var ev struct{ ID string }
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if got := m.Headers().Get(jetstream.MsgIDHeader); got != ev.ID {
				t.Errorf("Nats-Msg-Id %q for event %q", got, ev.ID)
			}
			ids = append(ids, ev.ID)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// golden compares body (JSON) with testdata/<name>.golden.json.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var got bytes.Buffer
	if err := json.Indent(&got, body, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	got.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ingest -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("response differs from %s (go test ./ingest -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got.Bytes(), want)
	}
}

// tsFormat has a fixed length, so error columns in golden files are stable.
const tsFormat = "2006-01-02T15:04:05.000Z07:00"

// job returns a valid job.completed event as compact JSON.
func job(id string) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":"job.completed","source":"/platform/jobs","time":%q,`+
		`"resellerid":"r1","orgid":"o1","data":{"job_id":"j-%s","user_id":"u1","model":"whisper-large-v3","language":"en",`+
		`"created_at":%q,"media_duration_seconds":61.5,"processing_ms":4200}}`,
		id, now.Format(tsFormat), id, now.Add(-time.Minute).Format(tsFormat))
}

// pretty indents JSON over several lines.
func pretty(s string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "    "); err != nil {
		panic(err)
	}
	return b.String()
}

func array(evs ...string) string { return "[\n" + strings.Join(evs, ",\n") + "\n]" }

// badJob is job(id) with a negative media duration and no user.
func badJob(id string) string {
	s := strings.Replace(job(id), `"media_duration_seconds":61.5`, `"media_duration_seconds":-3`, 1)
	return strings.Replace(s, `"user_id":"u1",`, "", 1)
}

func TestPostEvents(t *testing.T) {
	e := start(t, ingest.Config{})
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantStored  []string // ids added to the stream by this request
	}{
		{"single json", "application/json", pretty(job("single-1")), 200, []string{"single-1"}},
		{"single cloudevent", "application/cloudevents+json; charset=utf-8", job("ce-1"), 200, []string{"ce-1"}},
		{"array", "application/json", array(pretty(job("arr-1")), job("arr-2"), job("arr-3")), 200, []string{"arr-1", "arr-2", "arr-3"}},
		{"cloudevents batch", "application/cloudevents-batch+json", array(job("ceb-1"), job("ceb-2")), 200, []string{"ceb-1", "ceb-2"}},
		{"ndjson", "application/x-ndjson", job("nd-1") + "\n\n" + job("nd-2") + "\r\n  \n" + job("nd-3"), 200, []string{"nd-1", "nd-2", "nd-3"}},
		{"mixed array", "application/json", array(job("mix-1"), badJob("mix-2"), `{"id":"mix-3"}`, job("mix-4"), `42`), 207, []string{"mix-1", "mix-4"}},
		{"mixed ndjson", "application/x-ndjson", job("ndm-1") + "\n" + `{"id": "ndm-2", "type": ` + "\n\n" + badJob("ndm-3") + "\n" + job("ndm-4") + " x\n" + job("ndm-5") + "\n", 207, []string{"ndm-1", "ndm-5"}},
		{"duplicates", "application/json", array(job("arr-1"), job("dup-1"), job("dup-1")), 200, []string{"dup-1"}},
		{"all rejected", "application/json", array(badJob("rej-1"), `{}`), 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.storedIDs(t)
			r := e.post(t, tt.contentType, testKey, tt.body)
			if r.status != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			golden(t, "post_"+strings.ReplaceAll(tt.name, " ", "_"), r.body)
			after := e.storedIDs(t)
			if got := after[len(before):]; fmt.Sprint(got) != fmt.Sprint(tt.wantStored) {
				t.Errorf("stored %v, want %v", got, tt.wantStored)
			}
		})
	}

	if got := counter(t, e.reg, "tally_ingest_events_total", "result", "rejected"); got != 8 {
		t.Errorf("rejected events metric = %v, want 8", got)
	}
}

// counter returns the value of counter name{label=value}.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	return 0
}

func TestPostEventsRequestErrors(t *testing.T) {
	e := start(t, ingest.Config{MaxBodyBytes: 8 << 10, MaxBatch: 5})
	six := make([]string, 6)
	for i := range six {
		six[i] = job(fmt.Sprintf("big-%d", i))
	}
	tests := []struct {
		name        string
		contentType string
		key         string
		body        string
		wantStatus  int
	}{
		{"no key", "application/json", "", job("a"), 401},
		{"wrong key", "application/json", "not-the-key-0123456789", job("a"), 401},
		{"body too large", "application/json", testKey, strings.Repeat(" ", 8<<10) + job("a"), 413},
		{"batch too large", "application/json", testKey, array(six...), 413},
		{"ndjson batch too large", "application/x-ndjson", testKey, strings.Join(six, "\n"), 413},
		{"unsupported type", "text/plain", testKey, job("a"), 415},
		{"no content type", "", testKey, job("a"), 415},
		{"latin1", "application/json; charset=iso-8859-1", testKey, job("a"), 415},
		{"malformed json", "application/json", testKey, "[\n" + job("a") + ",\n  {\"id\": \"b\",, }\n]", 400},
		{"truncated json", "application/json", testKey, "[\n" + job("a") + ",\n" + job("b")[:40], 400},
		{"trailing garbage", "application/json", testKey, job("a") + "\n}", 400},
		{"empty body", "application/json", testKey, "  ", 400},
		{"empty array", "application/json", testKey, "[]", 400},
		{"array as cloudevent", "application/cloudevents+json", testKey, array(job("a")), 400},
		{"not an object", "application/json", testKey, `"hello"`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, tt.contentType, tt.key, tt.body)
			if r.status != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			golden(t, "error_"+strings.ReplaceAll(tt.name, " ", "_"), r.body)
			if tt.wantStatus == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if ids := e.storedIDs(t); len(ids) != 0 {
		t.Errorf("stored %v, want nothing", ids)
	}
}

func TestNATSDown(t *testing.T) {
	e := start(t, ingest.Config{})
	if r := e.post(t, "application/json", testKey, job("up-1")); r.status != 200 {
		t.Fatalf("status %d before shutdown: %s", r.status, r.body)
	}
	if r := do(t, mustReq(t, http.MethodGet, e.url+"/readyz")); r.status != 200 {
		t.Errorf("/readyz %d while up: %s", r.status, r.body)
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()

	r := e.post(t, "application/x-ndjson", testKey, job("down-1")+"\n"+badJob("down-2")+"\n"+job("down-3"))
	if r.status != 503 {
		t.Errorf("status %d, want 503: %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	golden(t, "nats_down", r.body)

	tests := []struct {
		path string
		want int
	}{
		{"/healthz", 200},
		{"/readyz", 503},
	}
	for _, tt := range tests {
		if r := do(t, mustReq(t, http.MethodGet, e.url+tt.path)); r.status != tt.want {
			t.Errorf("GET %s: %d, want %d: %s", tt.path, r.status, tt.want, r.body)
		}
	}
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ingest.Config
		wantErr bool
	}{
		{"ok", ingest.Config{Keys: []string{testKey}}, false},
		{"no keys", ingest.Config{}, true},
		{"short key", ingest.Config{Keys: []string{"short"}}, true},
		{"key with space", ingest.Config{Keys: []string{"0123456789 abcdef0123"}}, true},
		{"negative batch", ingest.Config{Keys: []string{testKey}, MaxBatch: -1}, true},
		{"negative ack timeout", ingest.Config{Keys: []string{testKey}, Publish: publish.Options{AckTimeout: -1}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestRunDrains(t *testing.T) {
	natsURL, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, natsURL)
	in, err := ingest.New(ingest.Config{Listen: "127.0.0.1:0", Keys: []string{testKey}}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := in.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
}

func TestStreamFull(t *testing.T) {
	e := start(t, ingest.Config{})
	// Room for a few events only: the rest are refused (discard new), and
	// the answer says which were stored before.
	if err := stream.Ensure(t.Context(), e.js, stream.Config{MaxBytes: 2000}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 10 {
		lines = append(lines, job(fmt.Sprintf("full-%d", i)))
	}
	r := e.post(t, "application/x-ndjson", testKey, strings.Join(lines, "\n"))
	if r.status != 503 {
		t.Fatalf("status %d, want 503: %s", r.status, r.body)
	}
	var resp struct {
		Accepted, Unavailable int
		Results               []struct{ ID, Status string }
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	stored := e.storedIDs(t)
	if resp.Accepted == 0 || resp.Unavailable == 0 || resp.Accepted != len(stored) {
		t.Fatalf("accepted %d, unavailable %d, stored %v", resp.Accepted, resp.Unavailable, stored)
	}
	for i, id := range stored {
		if res := resp.Results[i]; res.ID != id || res.Status != "accepted" {
			t.Errorf("result %d = %+v, stored %q", i, res, id)
		}
	}
}
