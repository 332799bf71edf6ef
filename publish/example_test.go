package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

func Example() {
	ctx := context.Background()

	// A throwaway embedded server; in production connect to your NATS.
	dir, err := os.MkdirTemp("", "tally-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := stream.StartEmbedded(stream.EmbeddedConfig{Port: -1, StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.WaitForShutdown()
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	if err := stream.Ensure(ctx, js, stream.Config{}); err != nil {
		log.Fatal(err)
	}

	p := publish.New(js, publish.Options{})
	now := time.Now().UTC()
	ev := &schemas.Event{
		SpecVersion: schemas.SpecVersion,
		ID:          "evt-0001",
		Type:        schemas.TypeJobCompleted,
		Source:      "/platform/jobs",
		Time:        now,
		ResellerID:  "r_acme",
		OrgID:       "org_7f3a",
		Data: json.RawMessage(`{"job_id":"job_1","user_id":"usr_42","model":"whisper-large-v3","language":"en",` +
			`"created_at":"` + now.Add(-time.Minute).Format(time.RFC3339) + `","media_duration_seconds":90,"processing_ms":5100}`),
	}
	invalid := &schemas.Event{SpecVersion: "0.3", ID: "evt-0002"}

	results, err := p.PublishBatch(ctx, []*schemas.Event{ev, ev, invalid})
	if err != nil {
		log.Fatal(err) // wraps publish.ErrUnavailable: retry later
	}
	for _, r := range results {
		fmt.Println(r.Index, r.ID, r.Status)
	}
	// Output:
	// 0 evt-0001 accepted
	// 1 evt-0001 duplicate
	// 2 evt-0002 rejected
}
