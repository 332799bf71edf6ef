package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// fixedNow is the API clock of every test: Friday 2026-11-20 12:00 UTC.
var fixedNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type fixtureBuilder struct {
	events []*schemas.Event
	n      int
}

func (f *fixtureBuilder) add(typ, reseller, org, at string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	f.n++
	f.events = append(f.events, &schemas.Event{
		SpecVersion: schemas.SpecVersion, ID: fmt.Sprintf("fx-%04d", f.n), Type: typ, Source: "query-test",
		Time: ts(at), ResellerID: reseller, OrgID: org, Data: raw,
	})
}

func (f *fixtureBuilder) org(reseller, org, name, plan, status, created string) {
	f.add(schemas.TypeOrganizationCreated, reseller, org, created, schemas.OrganizationData{Name: name, Plan: plan, Status: status, CreatedAt: ts(created)})
}

func (f *fixtureBuilder) sub(reseller, org, at, plan, status string, quota, price int64, cur string) {
	start := ts(at)
	f.add(schemas.TypeSubscriptionChanged, reseller, org, at, schemas.SubscriptionData{
		Plan: plan, Status: status, QuotaMinutes: quota, PriceMinor: price, Currency: cur,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
	})
}

func (f *fixtureBuilder) user(typ, reseller, org, at, user string) {
	f.add(typ, reseller, org, at, schemas.UserData{UserID: user, Role: "member"})
}

// job emits a job's lifecycle: created at created, then (if end != "")
// completed or failed at end.
func (f *fixtureBuilder) job(reseller, org, id, user, model, lang, created, end, outcome string, mediaSec float64, procMS int64) {
	d := schemas.JobData{JobID: id, UserID: user, Model: model, Language: lang, CreatedAt: ts(created), MediaDurationSeconds: mediaSec}
	f.add(schemas.TypeJobCreated, reseller, org, created, d)
	switch outcome {
	case "started":
		f.add(schemas.TypeJobStarted, reseller, org, end, d)
	case "completed":
		d.ProcessingMS = procMS
		f.add(schemas.TypeJobCompleted, reseller, org, end, d)
	case "failed":
		d.ProcessingMS = procMS
		d.ErrorCode = "unsupported_codec"
		f.add(schemas.TypeJobFailed, reseller, org, end, d)
	}
}

// fixtureEvents is two resellers' data. Both have an organization "o1"
// (tenancy must tell them apart by reseller), and r1's jobs sit on the
// edges that time zones move: Kolkata and Chatham midnights, and the New
// York DST change of 2026-11-01 (01:00-02:00 happens twice).
func fixtureEvents() []*schemas.Event {
	var f fixtureBuilder
	f.org("r1", "o1", "Acme Media", "pro", "active", "2026-09-01T10:00:00Z")
	f.org("r1", "o2", "Beta Labs", "starter", "trial", "2026-10-15T09:00:00Z")
	f.org("r1", "o3", "gamma studio", "pro", "suspended", "2026-11-05T08:00:00Z")
	f.org("r2", "o1", "Other Reseller Co", "enterprise", "active", "2026-08-01T00:00:00Z")
	f.org("r2", "o9", "Ninth", "pro", "active", "2026-08-02T00:00:00Z")

	f.sub("r1", "o1", "2026-10-01T00:00:00Z", "pro", "active", 1000, 4900, "EUR")
	f.sub("r1", "o2", "2026-10-15T09:00:00Z", "starter", "trialing", 100, 0, "EUR")
	f.sub("r1", "o2", "2026-11-10T09:00:00Z", "starter", "active", 300, 1900, "EUR")
	f.sub("r1", "o3", "2026-11-05T08:00:00Z", "pro", "active", 1000, 4900, "EUR")
	f.sub("r1", "o3", "2026-11-15T08:00:00Z", "pro", "canceled", 1000, 4900, "EUR")
	f.sub("r2", "o1", "2026-10-01T00:00:00Z", "enterprise", "active", 50000, 99000, "USD")

	f.user(schemas.TypeUserAdded, "r1", "o1", "2026-09-01T10:00:00Z", "u1")
	f.user(schemas.TypeUserAdded, "r1", "o1", "2026-09-02T10:00:00Z", "u2")
	f.user(schemas.TypeUserAdded, "r1", "o1", "2026-11-03T10:00:00Z", "u3")
	f.user(schemas.TypeUserRemoved, "r1", "o1", "2026-11-04T10:00:00Z", "u2")
	f.user(schemas.TypeUserAdded, "r1", "o2", "2026-10-15T09:00:00Z", "u4")
	f.user(schemas.TypeUserAdded, "r2", "o1", "2026-08-01T00:00:00Z", "u9")
	f.user(schemas.TypeUserAdded, "r2", "o9", "2026-08-02T00:00:00Z", "u8")

	// October: the previous period.
	f.job("r1", "o1", "j01", "u1", "whisper-large", "en", "2026-10-05T10:00:00Z", "2026-10-05T10:05:00Z", "completed", 600, 30000)
	f.job("r1", "o1", "j02", "u2", "whisper-large", "nl", "2026-10-19T23:00:00Z", "2026-10-19T23:10:00Z", "completed", 1200, 60000)
	// New York DST end: 05:30Z is 01:30 EDT, 06:30Z is 01:30 EST.
	f.job("r1", "o1", "j03", "u1", "whisper-large", "en", "2026-11-01T05:20:00Z", "2026-11-01T05:30:00Z", "completed", 300, 20000)
	f.job("r1", "o1", "j04", "u1", "nova-2", "en", "2026-11-01T06:20:00Z", "2026-11-01T06:30:00Z", "completed", 900, 25000)
	// 18:40Z on the 19th is 00:10 on the 20th in Kolkata; 10:30Z on the
	// 19th is 00:15 on the 20th in Chatham (+13:45).
	f.job("r1", "o1", "j05", "u3", "nova-2", "de", "2026-11-19T18:30:00Z", "2026-11-19T18:40:00Z", "completed", 1800, 90000)
	f.job("r1", "o2", "j06", "u4", "whisper-large", "en", "2026-11-19T10:20:00Z", "2026-11-19T10:30:00Z", "completed", 120, 8000)
	f.job("r1", "o2", "j07", "u4", "whisper-large", "en", "2026-11-19T11:00:00Z", "2026-11-19T11:02:00Z", "failed", 60, 2000)
	f.job("r1", "o2", "j08", "u4", "nova-2", "fr", "2026-11-20T11:00:00Z", "2026-11-20T11:01:00Z", "started", 45, 0)
	f.job("r1", "o3", "j09", "u5", "nova-2", "en", "2026-11-20T11:30:00Z", "", "", 30, 0)
	f.job("r1", "o3", "j10", "u5", "whisper-large", "en", "2026-11-10T09:00:00Z", "2026-11-10T09:15:00Z", "completed", 3000, 100000)
	// Reseller r2: same org id o1, much more usage.
	f.job("r2", "o1", "j01", "u9", "secret-model", "ja", "2026-11-19T18:30:00Z", "2026-11-19T18:45:00Z", "completed", 36000, 500000)
	f.job("r2", "o9", "j02", "u8", "secret-model", "ja", "2026-11-20T09:00:00Z", "2026-11-20T09:20:00Z", "failed", 100, 500)
	f.add(schemas.TypeInvoicePaid, "r1", "o1", "2026-11-02T08:00:00Z", schemas.InvoiceData{InvoiceID: "inv-1", AmountMinor: 4900, Currency: "EUR"})
	f.add(schemas.TypeInvoicePaymentFailed, "r1", "o2", "2026-11-12T08:00:00Z", schemas.InvoiceData{InvoiceID: "inv-2", AmountMinor: 1900, Currency: "EUR", FailureReason: "card_declined"})
	f.add(schemas.TypeInvoicePaid, "r2", "o1", "2026-11-01T08:00:00Z", schemas.InvoiceData{InvoiceID: "inv-3", AmountMinor: 99000, Currency: "USD"})
	f.add(schemas.TypeSystemNotice, "", "", "2026-11-03T09:00:00Z", schemas.SystemNoticeData{NoticeID: "n1", Title: "Maintenance on Sunday", Body: "The API is read-only 02:00-03:00 UTC.", Severity: "warning", Link: "https://status.example.com"})
	f.add(schemas.TypeSystemNotice, "r2", "", "2026-11-04T09:00:00Z", schemas.SystemNoticeData{NoticeID: "n2", Title: "Only for r2", Body: "r2's secret plans", Severity: "info"})
	return f.events
}

// project returns a fresh migrated ClickHouse database holding events,
// projected through the real pipeline: publisher → embedded JetStream →
// projector → events table → materialized views.
func project(t *testing.T, events []*schemas.Event) *testenv.CH {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ch := testenv.ClickHouse(t)
	if err := stream.Ensure(ctx, js, stream.Config{}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	results, err := publish.New(js, publish.Options{}).PublishBatch(ctx, events)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	for _, r := range results {
		if r.Status != publish.StatusAccepted {
			t.Fatalf("publish %s: %s %v", r.ID, r.Status, r.Err)
		}
	}
	pr, err := projector.New(projector.DefaultConfig(), js, ch.Conn, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- pr.Run(pctx) }()
	deadline := time.Now().Add(time.Minute)
	for {
		var n uint64
		if err := ch.Conn.QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == uint64(len(events)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector: %d of %d events after a minute", n, len(events))
		}
		time.Sleep(100 * time.Millisecond)
	}
	pcancel()
	if err := <-done; err != nil {
		t.Fatalf("projector: %v", err)
	}
	return ch
}

// eventsInserts renders the projected events table as INSERT statements
// with literal values, the setup CompareWithChDB runs on both servers.
func eventsInserts(t *testing.T, ch *testenv.CH) []string {
	t.Helper()
	return tableInserts(t, ch, "events")
}

// tableInserts renders a table's rows as one INSERT with literal values.
func tableInserts(t *testing.T, ch *testenv.CH, table string) []string {
	t.Helper()
	rows, err := ch.Conn.Query(t.Context(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name()
	}
	var values []string
	for rows.Next() {
		ptrs := make([]any, len(cols))
		for i, c := range cols {
			ptrs[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lits := make([]string, len(cols))
		for i, p := range ptrs {
			lit, err := testenv.Literal(reflect.ValueOf(p).Elem().Interface())
			if err != nil {
				t.Fatalf("%s.%s: %v", table, names[i], err)
			}
			lits[i] = lit
		}
		values = append(values, "("+strings.Join(lits, ", ")+")")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(values) == 0 {
		return nil
	}
	return []string{"INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES " + strings.Join(values, ",\n")}
}
