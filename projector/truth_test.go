package projector

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/schemas"
)

// readModel is one read model as sorted rows of "|"-joined values: the
// query reads it from ClickHouse, expect computes it from the events.
type readModel struct {
	name   string
	query  string
	expect func(t testing.TB, events []*schemas.Event) []string
}

// readModels covers every table the events table feeds.
var readModels = []readModel{
	{
		name:  "events per type",
		query: "SELECT type, toString(count()), toString(uniqExact(id)) FROM events GROUP BY type",
		expect: func(t testing.TB, events []*schemas.Event) []string {
			n := map[string]int{}
			for _, e := range events {
				n[e.Type]++
			}
			var out []string
			for typ, c := range n {
				out = append(out, join(typ, c, c))
			}
			return out
		},
	},
	{
		name:  "event_ids",
		query: "SELECT toString(count()), toString(uniqExact(id)) FROM event_ids",
		expect: func(t testing.TB, events []*schemas.Event) []string {
			return []string{join(len(events), len(events))}
		},
	},
	{
		name: "jobs FINAL",
		query: `SELECT reseller_id, org_id, job_id, user_id, model, language, status,
			toString(toUInt32(created_at)), toString(toUInt32(updated_at)), toString(media_ms), toString(processing_ms), error_code
			FROM jobs FINAL`,
		expect: func(t testing.TB, events []*schemas.Event) []string {
			type job struct {
				version uint64
				line    string
			}
			rank := map[string]uint64{schemas.TypeJobCreated: 1, schemas.TypeJobStarted: 2, schemas.TypeJobCompleted: 3, schemas.TypeJobFailed: 3}
			status := map[string]string{schemas.TypeJobCreated: "created", schemas.TypeJobStarted: "processing", schemas.TypeJobCompleted: "completed", schemas.TypeJobFailed: "failed"}
			jobs := map[string]job{}
			for _, e := range events {
				if rank[e.Type] == 0 {
					continue
				}
				d := mustData(t, e.JobData)
				v := rank[e.Type]*10_000_000_000_000 + uint64(e.Time.UnixMilli())
				key := e.ResellerID + "/" + d.JobID
				if jobs[key].version >= v {
					continue
				}
				jobs[key] = job{v, join(e.ResellerID, e.OrgID, d.JobID, d.UserID, d.Model, d.Language, status[e.Type],
					d.CreatedAt.Unix(), e.Time.Unix(), uint64(math.Round(d.MediaDurationSeconds*1000)), d.ProcessingMS, d.ErrorCode)}
			}
			var out []string
			for _, j := range jobs {
				out = append(out, j.line)
			}
			return out
		},
	},
	{
		name: "usage_15m",
		query: `SELECT reseller_id, org_id, toString(toUInt32(bucket)), model, language,
			toString(sumMerge(jobs_created)), toString(sumMerge(jobs_completed)), toString(sumMerge(jobs_failed)),
			toString(sumMerge(media_ms)), toString(sumMerge(processing_ms)), toString(uniqExactMerge(users))
			FROM usage_15m GROUP BY reseller_id, org_id, bucket, model, language`,
		expect: func(t testing.TB, events []*schemas.Event) []string {
			type agg struct {
				created, completed, failed, media, processing uint64
				users                                         map[string]bool
			}
			aggs := map[string]*agg{}
			for _, e := range events {
				if e.Type != schemas.TypeJobCreated && e.Type != schemas.TypeJobCompleted && e.Type != schemas.TypeJobFailed {
					continue
				}
				d := mustData(t, e.JobData)
				bucket := e.Time.Truncate(15 * time.Minute).Unix()
				key := join(e.ResellerID, e.OrgID, bucket, d.Model, d.Language)
				a := aggs[key]
				if a == nil {
					a = &agg{users: map[string]bool{}}
					aggs[key] = a
				}
				a.users[d.UserID] = true
				switch e.Type {
				case schemas.TypeJobCreated:
					a.created++
				case schemas.TypeJobCompleted:
					a.completed++
					a.media += uint64(math.Round(d.MediaDurationSeconds * 1000))
					a.processing += uint64(d.ProcessingMS)
				case schemas.TypeJobFailed:
					a.failed++
					a.processing += uint64(d.ProcessingMS)
				}
			}
			var out []string
			for key, a := range aggs {
				out = append(out, join(key, a.created, a.completed, a.failed, a.media, a.processing, len(a.users)))
			}
			return out
		},
	},
	{
		name: "organizations FINAL",
		query: `SELECT reseller_id, org_id, name, plan, status, toString(toUInt32(created_at)), toString(toUInt32(updated_at))
			FROM organizations FINAL`,
		expect: latest(func(t testing.TB, e *schemas.Event) (string, string) {
			if e.Type != schemas.TypeOrganizationCreated && e.Type != schemas.TypeOrganizationUpdated {
				return "", ""
			}
			d := mustData(t, e.OrganizationData)
			return e.ResellerID + "/" + e.OrgID, join(e.ResellerID, e.OrgID, d.Name, d.Plan, d.Status, d.CreatedAt.Unix(), e.Time.Unix())
		}),
	},
	{
		name: "subscriptions FINAL",
		query: `SELECT reseller_id, org_id, plan, status, toString(quota_minutes), toString(price_minor), currency,
			toString(toUInt32(period_start)), toString(toUInt32(period_end)), toString(toUInt32(updated_at))
			FROM subscriptions FINAL`,
		expect: latest(func(t testing.TB, e *schemas.Event) (string, string) {
			if e.Type != schemas.TypeSubscriptionChanged {
				return "", ""
			}
			d := mustData(t, e.SubscriptionData)
			return e.ResellerID + "/" + e.OrgID, join(e.ResellerID, e.OrgID, d.Plan, d.Status, d.QuotaMinutes, d.PriceMinor, d.Currency,
				d.PeriodStart.Unix(), d.PeriodEnd.Unix(), e.Time.Unix())
		}),
	},
	{
		name:  "org_users FINAL active per org",
		query: "SELECT reseller_id, org_id, toString(sum(active)), toString(count()) FROM org_users FINAL GROUP BY reseller_id, org_id",
		expect: func(t testing.TB, events []*schemas.Event) []string {
			users := latestBy(t, events, func(t testing.TB, e *schemas.Event) (string, string) {
				if e.Type != schemas.TypeUserAdded && e.Type != schemas.TypeUserRemoved {
					return "", ""
				}
				d := mustData(t, e.UserData)
				active := "0"
				if e.Type == schemas.TypeUserAdded {
					active = "1"
				}
				return e.ResellerID + "/" + e.OrgID + "/" + d.UserID, join(e.ResellerID, e.OrgID, active)
			})
			type n struct{ active, all int }
			orgs := map[string]*n{}
			for _, line := range users {
				i := strings.LastIndexByte(line, '|')
				key := line[:i]
				if orgs[key] == nil {
					orgs[key] = &n{}
				}
				orgs[key].all++
				if line[i+1:] == "1" {
					orgs[key].active++
				}
			}
			var out []string
			for key, c := range orgs {
				out = append(out, join(key, c.active, c.all))
			}
			return out
		},
	},
	{
		name:  "custom_models FINAL",
		query: "SELECT reseller_id, org_id, model_id, name, base_model, language, toString(shared) FROM custom_models FINAL",
		expect: latest(func(t testing.TB, e *schemas.Event) (string, string) {
			if e.Type != schemas.TypeCustomModelCreated && e.Type != schemas.TypeCustomModelUpdated {
				return "", ""
			}
			d := mustData(t, e.CustomModelData)
			shared := 0
			if d.Shared {
				shared = 1
			}
			return e.ResellerID + "/" + d.ModelID, join(e.ResellerID, e.OrgID, d.ModelID, d.Name, d.BaseModel, d.Language, shared)
		}),
	},
}

// latest builds the expectation of a ReplacingMergeTree versioned by event
// time: per key, the line of the event with the latest time.
func latest(f func(testing.TB, *schemas.Event) (key, line string)) func(testing.TB, []*schemas.Event) []string {
	return func(t testing.TB, events []*schemas.Event) []string {
		return latestBy(t, events, f)
	}
}

func latestBy(t testing.TB, events []*schemas.Event, f func(testing.TB, *schemas.Event) (key, line string)) []string {
	type v struct {
		ms   int64
		line string
	}
	m := map[string]v{}
	for _, e := range events {
		key, line := f(t, e)
		if key == "" {
			continue
		}
		if cur, ok := m[key]; ok && cur.ms >= e.Time.UnixMilli() {
			continue
		}
		m[key] = v{e.Time.UnixMilli(), line}
	}
	var out []string
	for _, x := range m {
		out = append(out, x.line)
	}
	return out
}

func mustData[T any](t testing.TB, f func() (*T, error)) *T {
	t.Helper()
	d, err := f()
	if err != nil {
		t.Fatalf("event data: %v", err)
	}
	return d
}

func join(vs ...any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "|")
}

// queryLines runs a query whose columns are all String and returns its rows
// as sorted "|"-joined lines.
func queryLines(t testing.TB, ctx context.Context, conn driver.Conn, query string) []string {
	t.Helper()
	rows, err := conn.Query(ctx, query)
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	defer rows.Close()
	n := len(rows.Columns())
	vals := make([]string, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("scan %q: %v", query, err)
		}
		out = append(out, strings.Join(vals, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	slices.Sort(out)
	return out
}

// checkReadModels compares every read model with the ground truth computed
// from events (unique ids) and reports each difference.
func checkReadModels(t testing.TB, ctx context.Context, conn driver.Conn, events []*schemas.Event) {
	t.Helper()
	for _, rm := range readModels {
		want := rm.expect(t, events)
		slices.Sort(want)
		got := queryLines(t, ctx, conn, rm.query)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d rows, want %d; first differences:\n%s", rm.name, len(got), len(want), diffLines(got, want, 10))
		}
	}
}

// diffLines lists up to max lines only in got (+) or only in want (-).
func diffLines(got, want []string, max int) string {
	in := func(s []string) map[string]int {
		m := map[string]int{}
		for _, x := range s {
			m[x]++
		}
		return m
	}
	g, w := in(got), in(want)
	var b strings.Builder
	n := 0
	for _, x := range got {
		if g[x] > w[x] && n < max {
			fmt.Fprintf(&b, "  + %s (x%d, want x%d)\n", x, g[x], w[x])
			g[x] = w[x]
			n++
		}
	}
	for _, x := range want {
		if w[x] > g[x] && n < max {
			fmt.Fprintf(&b, "  - %s\n", x)
			w[x] = g[x]
			n++
		}
	}
	return b.String()
}
