package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Read-model queries as an analyst or the dashboard would write them.
const (
	eventsByTypeSQL = `SELECT type, count() AS n, uniqExact(id) AS ids FROM events GROUP BY type`
	jobsSQL         = `SELECT reseller_id, org_id, job_id, status, media_ms FROM jobs FINAL`
	usageSQL        = `SELECT reseller_id, org_id, bucket, model, language,
    sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed),
    sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users)
FROM usage_15m GROUP BY reseller_id, org_id, bucket, model, language`
	userMonthsSQL = `SELECT reseller_id, org_id, month, user_id, minMerge(first_at), maxMerge(last_at)
FROM org_user_months GROUP BY reseller_id, org_id, month, user_id`
	userDaysSQL = `SELECT reseller_id, org_id, day, concat(user_id, '/', model, '/', language), minMerge(first_at), maxMerge(last_at)
FROM org_user_days GROUP BY reseller_id, org_id, day, user_id, model, language`
	tenantChangesSQL = `SELECT type, count() AS n, uniqExact(id) AS ids FROM tenant_changes GROUP BY type`
	orgsSQL          = `SELECT reseller_id, org_id, name, plan, status FROM organizations FINAL`
	subsSQL          = `SELECT reseller_id, org_id, plan, status, quota_minutes, price_minor FROM subscriptions FINAL`
	usersSQL         = `SELECT reseller_id, org_id, countIf(active = 1) FROM org_users FINAL GROUP BY reseller_id, org_id`
)

// checkReadModels compares every read model with the ground truth, exactly.
func checkReadModels(t *testing.T, ctx context.Context, conn driver.Conn, want truth, unique int) {
	t.Helper()
	t.Run("events", func(t *testing.T) {
		got := rowsByType(t, ctx, conn, "events", eventsByTypeSQL)
		var total uint64
		for _, n := range got {
			total += n
		}
		if total != uint64(unique) {
			t.Errorf("events: %d rows, want %d", total, unique)
		}
		for _, typ := range sortedKeys(want.byType) {
			if got[typ] != want.byType[typ] {
				t.Errorf("events of type %s: %d, want %d", typ, got[typ], want.byType[typ])
			}
		}
	})
	t.Run("tenant_changes", func(t *testing.T) {
		got := rowsByType(t, ctx, conn, "tenant_changes", tenantChangesSQL)
		for _, typ := range []string{"subscription.changed", "user.added", "user.removed"} {
			if got[typ] != want.byType[typ] {
				t.Errorf("tenant_changes of type %s: %d, want %d", typ, got[typ], want.byType[typ])
			}
			delete(got, typ)
		}
		if len(got) > 0 {
			t.Errorf("tenant_changes holds other types: %v", got)
		}
	})
	t.Run("jobs", func(t *testing.T) {
		got := map[string]jobState{}
		rows := query(t, ctx, conn, jobsSQL)
		for rows.Next() {
			var r, o, j, status string
			var media uint64
			must(t, rows.Scan(&r, &o, &j, &status, &media))
			got[r+"/"+o+"/"+j] = jobState{status: status, mediaMS: media}
		}
		if len(got) != len(want.jobs) {
			t.Errorf("jobs: %d, want %d", len(got), len(want.jobs))
		}
		bad := 0
		for _, k := range sortedKeys(want.jobs) {
			w, g := want.jobs[k], got[k]
			if g.status != w.status || g.mediaMS != w.mediaMS {
				if bad++; bad <= 5 {
					t.Errorf("job %s: status %q media %d, want %q %d", k, g.status, g.mediaMS, w.status, w.mediaMS)
				}
			}
		}
	})
	t.Run("usage", func(t *testing.T) {
		rows := query(t, ctx, conn, usageSQL)
		n, bad := 0, 0
		var minutes, wantMinutes uint64
		for rows.Next() {
			var k usageKey
			var created, completed, failed, media, proc, users uint64
			must(t, rows.Scan(&k.reseller, &k.org, &k.bucket, &k.model, &k.lang, &created, &completed, &failed, &media, &proc, &users))
			k.bucket = k.bucket.UTC()
			n++
			minutes += media
			w := want.usage[k]
			if w == nil {
				if bad++; bad <= 5 {
					t.Errorf("usage row %+v not expected", k)
				}
				continue
			}
			got := [6]uint64{created, completed, failed, media, proc, users}
			exp := [6]uint64{w.created, w.completed, w.failed, w.mediaMS, w.processingMS, uint64(len(w.users))}
			if got != exp {
				if bad++; bad <= 5 {
					t.Errorf("usage %s/%s %s %s/%s: got created,completed,failed,media_ms,processing_ms,users %v, want %v",
						k.reseller, k.org, k.bucket.Format(time.RFC3339), k.model, k.lang, got, exp)
				}
			}
		}
		for _, w := range want.usage {
			wantMinutes += w.mediaMS
		}
		if n != len(want.usage) {
			t.Errorf("usage: %d rows, want %d", n, len(want.usage))
		}
		if minutes != wantMinutes {
			t.Errorf("usage: %d media ms in total, want %d", minutes, wantMinutes)
		}
	})
	for _, tc := range []struct {
		table, sql, layout string
		want               map[string][2]time.Time
	}{{"org_user_months", userMonthsSQL, "2006-01", want.userMonths}, {"org_user_days", userDaysSQL, "2006-01-02", want.userDays}} {
		t.Run(tc.table, func(t *testing.T) {
			got := map[string][2]time.Time{}
			rows := query(t, ctx, conn, tc.sql)
			for rows.Next() {
				var r, o, u string
				var period, first, last time.Time
				must(t, rows.Scan(&r, &o, &period, &u, &first, &last))
				got[r+"/"+o+"/"+period.UTC().Format(tc.layout)+"/"+u] = [2]time.Time{first.UTC(), last.UTC()}
			}
			if len(got) != len(tc.want) {
				t.Errorf("%s: %d rows, want %d", tc.table, len(got), len(tc.want))
			}
			bad := 0
			for _, k := range sortedKeys(tc.want) {
				if g, w := got[k], tc.want[k]; !g[0].Equal(w[0]) || !g[1].Equal(w[1]) {
					if bad++; bad <= 5 {
						t.Errorf("%s %s: first, last %v, want %v", tc.table, k, g, w)
					}
				}
			}
		})
	}
	t.Run("organizations", func(t *testing.T) {
		got := map[string]orgState{}
		rows := query(t, ctx, conn, orgsSQL)
		for rows.Next() {
			var r, o string
			var s orgState
			must(t, rows.Scan(&r, &o, &s.name, &s.plan, &s.status))
			got[r+"/"+o] = s
		}
		compareLatest(t, "organization", "org:", got, want.orgs, want.ties, func(s orgState) orgState { s.timeMS = 0; return s })
	})
	t.Run("subscriptions", func(t *testing.T) {
		got := map[string]subState{}
		rows := query(t, ctx, conn, subsSQL)
		for rows.Next() {
			var r, o string
			var s subState
			var quota uint64
			must(t, rows.Scan(&r, &o, &s.plan, &s.status, &quota, &s.price))
			s.quota = int64(quota)
			got[r+"/"+o] = s
		}
		compareLatest(t, "subscription", "sub:", got, want.subs, want.ties, func(s subState) subState { s.timeMS = 0; return s })
	})
	t.Run("users", func(t *testing.T) {
		got := map[string]uint64{}
		rows := query(t, ctx, conn, usersSQL)
		for rows.Next() {
			var r, o string
			var n uint64
			must(t, rows.Scan(&r, &o, &n))
			got[r+"/"+o] = n
		}
		compareLatest(t, "active users of", "users:", got, want.users, want.ties, func(n uint64) uint64 { return n })
	})
}

func compareLatest[V comparable](t *testing.T, what, tiePrefix string, got, want map[string]V, ties map[string]bool, norm func(V) V) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for _, k := range sortedKeys(want) {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s %s missing", what, k)
			continue
		}
		if ties[tiePrefix+k] {
			continue
		}
		if norm(g) != norm(want[k]) {
			t.Errorf("%s %s = %+v, want %+v", what, k, norm(g), norm(want[k]))
		}
	}
}

func query(t *testing.T, ctx context.Context, conn driver.Conn, sql string) driver.Rows {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	t.Cleanup(func() { rows.Close() })
	return rows
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("scan: %w", err))
	}
}

// rowsByType runs a (type, rows, distinct ids) query and returns the rows
// per type, reporting any type with more rows than ids.
func rowsByType(t *testing.T, ctx context.Context, conn driver.Conn, table, sql string) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	rows := query(t, ctx, conn, sql)
	for rows.Next() {
		var typ string
		var n, ids uint64
		must(t, rows.Scan(&typ, &n, &ids))
		if n != ids {
			t.Errorf("%s of type %s: %d rows for %d ids: duplicates inserted", table, typ, n, ids)
		}
		got[typ] = n
	}
	return got
}
