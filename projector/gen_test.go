package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// genConfig shapes a generated event set.
type genConfig struct {
	Seed      uint64
	Resellers int
	Orgs      int // per reseller
	Jobs      int // in total
	// Now anchors event times: they fall in the Spread before it (default
	// 1h), except one job in LateEvery (0: none), which is days late.
	Now       time.Time
	Spread    time.Duration
	LateEvery int
}

// generate returns a realistic, valid event set of every type, shuffled (out
// of order), with unique ids. Per job: created, usually started, then
// completed or failed (some never finish).
func generate(cfg genConfig) []*schemas.Event {
	if cfg.Spread == 0 {
		cfg.Spread = time.Hour
	}
	// at is the time a fraction f of Spread before Now.
	at := func(f float64) time.Time { return cfg.Now.Add(-time.Duration(f * float64(cfg.Spread))) }
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	var out []*schemas.Event
	n := 0
	add := func(typ, reseller, org string, t time.Time, data any) {
		n++
		raw, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		out = append(out, &schemas.Event{
			SpecVersion: schemas.SpecVersion,
			ID:          fmt.Sprintf("ev-%d-%07d", cfg.Seed, n),
			Type:        typ,
			Source:      "test/generator",
			Time:        t.UTC().Truncate(time.Millisecond),
			ResellerID:  reseller,
			OrgID:       org,
			Data:        raw,
		})
	}
	// ms spreads events of one entity so their versions (time_ms) differ.
	ms := func(i int) time.Duration { return time.Duration(i) * time.Millisecond }
	models := []string{"general", "medical", "legal"}
	langs := []string{"en", "nl", "de", "hi"}
	type org struct{ reseller, id string }
	var orgs []org
	for r := range cfg.Resellers {
		rid := fmt.Sprintf("r%d", r)
		for o := range cfg.Orgs {
			oid := fmt.Sprintf("o%d-%d", r, o)
			orgs = append(orgs, org{rid, oid})
			created := cfg.Now.Add(-time.Duration(48+rng.IntN(1000)) * time.Hour)
			add(schemas.TypeOrganizationCreated, rid, oid, at(1), schemas.OrganizationData{
				Name: "Org " + oid, Plan: "starter", Status: schemas.OrgStatusTrial, CreatedAt: created})
			for u := range 1 + rng.IntN(3) {
				add(schemas.TypeOrganizationUpdated, rid, oid, at(1).Add(ms(u+1)*7), schemas.OrganizationData{
					Name: fmt.Sprintf("Org %s v%d", oid, u), Plan: []string{"starter", "pro", "enterprise"}[rng.IntN(3)],
					Status: []string{schemas.OrgStatusActive, schemas.OrgStatusTrial, schemas.OrgStatusSuspended}[rng.IntN(3)], CreatedAt: created})
			}
			for s := range 1 + rng.IntN(2) {
				start := cfg.Now.Add(-24 * time.Hour).Truncate(time.Hour)
				add(schemas.TypeSubscriptionChanged, rid, oid, at(0.5).Add(ms(s+1)*11), schemas.SubscriptionData{
					Plan: "pro", Status: schemas.SubStatusActive, QuotaMinutes: int64(1000 * (s + 1)), PriceMinor: int64(4900 + 100*rng.IntN(50)),
					Currency: "EUR", PeriodStart: start, PeriodEnd: start.Add(30 * 24 * time.Hour)})
			}
			for u := range 4 {
				uid := fmt.Sprintf("u%d", u)
				t := at(0.8).Add(ms(u * 13))
				add(schemas.TypeUserAdded, rid, oid, t, schemas.UserData{UserID: uid, Role: "member"})
				if rng.IntN(3) == 0 {
					add(schemas.TypeUserRemoved, rid, oid, t.Add(cfg.Spread/100), schemas.UserData{UserID: uid})
				}
			}
			add(schemas.TypeInvoicePaid, rid, oid, at(0.3), schemas.InvoiceData{InvoiceID: "inv-" + oid + "-1", AmountMinor: 4900, Currency: "EUR"})
			if rng.IntN(4) == 0 {
				add(schemas.TypeInvoicePaymentFailed, rid, oid, at(0.2), schemas.InvoiceData{InvoiceID: "inv-" + oid + "-2", AmountMinor: 4900, Currency: "EUR", FailureReason: "card_declined"})
			}
			if rng.IntN(3) == 0 {
				mid := "cm-" + oid
				add(schemas.TypeCustomModelCreated, rid, oid, at(0.7), schemas.CustomModelData{ModelID: mid, Name: "Custom " + oid, BaseModel: "general", Language: "nl"})
				add(schemas.TypeCustomModelUpdated, rid, oid, at(0.69), schemas.CustomModelData{ModelID: mid, Name: "Custom " + oid, BaseModel: "general", Language: "nl", Shared: rng.IntN(2) == 0})
			}
		}
		add(schemas.TypeSystemNotice, rid, "", at(0.1), schemas.SystemNoticeData{NoticeID: "n-" + rid, Title: "Maintenance", Body: "Tonight", Severity: schemas.SeverityWarning, Link: "https://status.example.com"})
	}
	add(schemas.TypeSystemNotice, "", "", at(0.05), schemas.SystemNoticeData{NoticeID: "n-all", Title: "New model", Body: "Try it", Severity: schemas.SeverityInfo})

	for j := range cfg.Jobs {
		o := orgs[rng.IntN(len(orgs))]
		created := at(rng.Float64())
		if cfg.LateEvery > 0 && rng.IntN(cfg.LateEvery) == 0 {
			created = created.Add(-time.Duration(2+rng.IntN(5)) * 24 * time.Hour) // days late
		}
		d := schemas.JobData{
			JobID: fmt.Sprintf("job-%d", j), UserID: fmt.Sprintf("u%d", rng.IntN(6)),
			Model: models[rng.IntN(len(models))], Language: langs[rng.IntN(len(langs))],
			CreatedAt: created.UTC().Truncate(time.Second),
		}
		add(schemas.TypeJobCreated, o.reseller, o.id, created, d)
		if rng.IntN(10) == 0 {
			continue // still queued
		}
		add(schemas.TypeJobStarted, o.reseller, o.id, created.Add(time.Millisecond), d)
		switch rng.IntN(8) {
		case 0:
			continue // still processing
		case 1:
			d.ProcessingMS = int64(100 + rng.IntN(5000))
			d.ErrorCode = "media_unreadable"
			d.ErrorMessage = "could not decode audio"
			add(schemas.TypeJobFailed, o.reseller, o.id, created.Add(time.Duration(2+rng.IntN(60))*time.Millisecond), d)
		default:
			d.MediaDurationSeconds = 0.1 + math.Round(rng.Float64()*36000)/10
			d.ProcessingMS = int64(500 + rng.IntN(120_000))
			add(schemas.TypeJobCompleted, o.reseller, o.id, created.Add(time.Duration(2+rng.IntN(900))*time.Millisecond), d)
		}
	}
	for _, e := range out {
		if err := e.Validate(); err != nil {
			panic(fmt.Sprintf("generated an invalid event: %v", err))
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// body is the message body of e as ingest would publish it.
func body(t testing.TB, e *schemas.Event) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal event: %v", err)
	}
	return b
}

// publishEvents publishes events on their subjects with Nats-Msg-Id = id
// and waits for every ack. It returns how many JetStream reported as
// duplicates.
func publishEvents(t testing.TB, ctx context.Context, js jetstream.JetStream, events []*schemas.Event) (dups int) {
	t.Helper()
	const window = 1024
	futures := make([]jetstream.PubAckFuture, 0, window)
	wait := func() {
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					dups++
				}
			case err := <-f.Err():
				t.Fatalf("publish %s: %v", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
			case <-ctx.Done():
				t.Fatalf("publish: %v", ctx.Err())
			}
		}
		futures = futures[:0]
	}
	for _, e := range events {
		m := &nats.Msg{Subject: stream.Subject(e), Data: body(t, e), Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatalf("publish %s: %v", e.ID, err)
		}
		futures = append(futures, f)
		if len(futures) == window {
			wait()
		}
	}
	wait()
	return dups
}
