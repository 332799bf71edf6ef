package ingest_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/ingest"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

const benchBatch = 1000

// benchJetStream starts an embedded JetStream with tally's streams.
func benchJetStream(b *testing.B) jetstream.JetStream {
	b.Helper()
	url, _ := testenv.NATS(b)
	_, js := testenv.JetStream(b, url)
	if err := stream.Ensure(b.Context(), js, stream.Config{}); err != nil {
		b.Fatal(err)
	}
	return js
}

// eventTemplate is a compact job.completed event split around its id.
type eventTemplate struct{ head, mid, tail []byte }

func newTemplate() eventTemplate {
	now := time.Now().UTC().Format(tsFormat)
	created := time.Now().UTC().Add(-time.Minute).Format(tsFormat)
	return eventTemplate{
		head: []byte(`{"specversion":"1.0","id":"`),
		mid: []byte(`","type":"job.completed","source":"/platform/jobs","time":"` + now +
			`","resellerid":"r_acme","orgid":"org_7f3a","subject":"job","datacontenttype":"application/json",` +
			`"data":{"job_id":"job_`),
		tail: []byte(`","user_id":"usr_42","model":"whisper-large-v3","language":"en","created_at":"` + created +
			`","media_duration_seconds":1834.52,"processing_ms":95210}}`),
	}
}

func (t eventTemplate) append(b []byte, id string) []byte {
	b = append(b, t.head...)
	b = append(b, id...)
	b = append(b, t.mid...)
	b = append(b, id...)
	return append(b, t.tail...)
}

// BenchmarkRawPublishAsync is the baseline: nats.go async publishes of
// ready-made event bodies with Nats-Msg-Id, waiting for every ack of each
// batch of 1,000.
func BenchmarkRawPublishAsync(b *testing.B) {
	js := benchJetStream(b)
	tpl := newTemplate()
	subject := "tally.events.r_acme.org_7f3a.job.completed"
	bodies := make([][]byte, benchBatch)
	ids := make([]string, benchBatch)
	futures := make([]jetstream.PubAckFuture, benchBatch)
	seq := 0
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		b.StopTimer()
		for i := range bodies {
			seq++
			ids[i] = "raw-" + strconv.Itoa(seq)
			bodies[i] = tpl.append(make([]byte, 0, 400), ids[i])
		}
		b.StartTimer()
		for i := range bodies {
			f, err := js.PublishMsgAsync(&nats.Msg{
				Subject: subject,
				Data:    bodies[i],
				Header:  nats.Header{jetstream.MsgIDHeader: []string{ids[i]}},
			})
			if err != nil {
				b.Fatal(err)
			}
			futures[i] = f
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					b.Fatal("duplicate")
				}
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestNDJSON posts NDJSON batches of 1,000 events to a real
// ingest listener (HTTP over loopback, validation, publish, acks).
func BenchmarkIngestNDJSON(b *testing.B) {
	js := benchJetStream(b)
	in, err := ingest.New(ingest.Config{Keys: []string{testKey}}, js, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
	url := "http://" + ln.Addr().String() + "/v1/events"

	tpl := newTemplate()
	body := make([]byte, 0, benchBatch*400)
	client := &http.Client{}
	seq := 0
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		b.StopTimer()
		body = body[:0]
		for range benchBatch {
			seq++
			body = tpl.append(body, "nd-"+strconv.Itoa(seq))
			body = append(body, '\n')
		}
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+testKey)
		b.StartTimer()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(n*benchBatch)/b.Elapsed().Seconds(), "events/s")
}
