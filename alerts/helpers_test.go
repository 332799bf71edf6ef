package alerts

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/testenv"
)

// ev is one row of the events table, reduced to the columns the rules read.
type ev struct {
	id, typ, reseller, org string
	time                   time.Time
	name, plan, status     string
	quota                  uint64
	amount                 int64
	currency               string
	periodStart, periodEnd time.Time
	ref, errCode           string
	jobID                  string
	mediaMS                uint64
}

const evColumns = "id, type, source, time, time_ms, reseller_id, org_id, data, name, plan, status, created_at, user_id, job_id, model, language, media_ms, error_code, quota_minutes, amount_minor, currency, period_start, period_end, ref_id"

func (e ev) values() []any {
	return []any{e.id, e.typ, "test", e.time.UTC().Truncate(time.Second), uint64(e.time.UnixMilli()), e.reseller, e.org, "{}",
		e.name, e.plan, e.status, e.time.UTC().Truncate(time.Second), "u1", e.jobID, "nova", "en", e.mediaMS, e.errCode,
		e.quota, e.amount, e.currency, e.periodStart.UTC(), e.periodEnd.UTC(), e.ref}
}

var idSeq struct {
	sync.Mutex
	n int
}

func nextID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%s-%06d", prefix, idSeq.n)
}

// insertEvents writes rows into events with PrepareBatch; the materialized
// views derive usage_15m, subscriptions and the rest.
func insertEvents(t *testing.T, ch *testenv.CH, rows []ev) {
	t.Helper()
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO events ("+evColumns+")")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.id == "" {
			r.id = nextID("e")
		}
		if err := b.Append(r.values()...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// eventsInsertSQL renders rows as one INSERT with literal values (the setup
// CompareWithChDB runs on both servers).
func eventsInsertSQL(t *testing.T, rows []ev) string {
	t.Helper()
	var vals []string
	for _, r := range rows {
		if r.id == "" {
			r.id = nextID("e")
		}
		var lits []string
		for _, v := range r.values() {
			l, err := testenv.Literal(v)
			if err != nil {
				t.Fatal(err)
			}
			lits = append(lits, l)
		}
		vals = append(vals, "("+strings.Join(lits, ", ")+")")
	}
	return "INSERT INTO events (" + evColumns + ") VALUES " + strings.Join(vals, ",\n")
}

func subscription(reseller, org, plan, status string, quota uint64, price int64, start, end, at time.Time) ev {
	return ev{typ: "subscription.changed", reseller: reseller, org: org, time: at, plan: plan, status: status, quota: quota,
		amount: price, currency: "EUR", periodStart: start, periodEnd: end}
}

// completed returns n job.completed events of mediaMS each at times at.
func completed(reseller, org string, at time.Time, n int, mediaMS uint64) []ev {
	out := make([]ev, n)
	for i := range out {
		out[i] = ev{typ: "job.completed", reseller: reseller, org: org, time: at.Add(time.Duration(i) * time.Second),
			jobID: nextID("j"), mediaMS: mediaMS}
	}
	return out
}

func failedJobs(reseller, org string, at time.Time, n int) []ev {
	out := make([]ev, n)
	for i := range out {
		out[i] = ev{typ: "job.failed", reseller: reseller, org: org, time: at.Add(time.Duration(i) * time.Second),
			jobID: nextID("j"), errCode: "boom"}
	}
	return out
}

// clock is an injectable clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type harness struct {
	ch  *testenv.CH
	js  jetstream.JetStream
	clk *clock
	cfg Config
}

func newHarness(t *testing.T, now time.Time) *harness {
	t.Helper()
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ch := testenv.ClickHouse(t)
	clk := &clock{now: now}
	cfg := DefaultConfig()
	cfg.Now = clk.Now
	cfg.ActivityConsumer = ""
	cfg.Webhooks.Consumer = ""
	return &harness{ch: ch, js: js, clk: clk, cfg: cfg}
}

func (h *harness) newAlerts(t *testing.T) *Alerts {
	t.Helper()
	a, err := New(h.cfg, h.js, h.ch.Conn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a
}

// evaluate moves the clock to the next window and evaluates once.
func (h *harness) evaluate(t *testing.T, a *Alerts) {
	t.Helper()
	h.clk.Add(h.cfg.Interval)
	if err := a.Evaluate(t.Context()); err != nil {
		t.Fatalf("evaluate: %v", err)
	}
}

type storedRow struct {
	key, rule, reseller, org, state, severity, title string
}

// alerts returns the latest state of every alert of a rule (FINAL).
func (h *harness) alerts(t *testing.T, rule string) map[string]storedRow {
	t.Helper()
	rows, err := h.ch.Conn.Query(t.Context(), "SELECT alert_key, rule, reseller_id, org_id, state, severity, title FROM alerts FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedRow{}
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.key, &r.rule, &r.reseller, &r.org, &r.state, &r.severity, &r.title); err != nil {
			t.Fatal(err)
		}
		if r.rule == rule {
			out[r.key] = r
		}
	}
	return out
}

// published returns the rule's messages on the TALLY_ALERTS stream as
// subject + " " + Nats-Msg-Id.
func (h *harness) published(t *testing.T, rule string) []string {
	t.Helper()
	s, err := h.js.Stream(t.Context(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(m.Subject, "."+rule) {
			out = append(out, m.Subject+" "+m.Header.Get(jetstream.MsgIDHeader))
		}
	}
	return out
}

func states(m map[string]storedRow) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v.state
	}
	return out
}
