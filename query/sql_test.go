package query

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/testenv"
)

func TestActivityQueryBuild(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		q        activityQuery
		wantSQL  string
		wantArgs []any
	}{
		{
			name: "scope only",
			q:    activityQuery{reseller: "r1", limit: 51},
			wantSQL: `SELECT org_id, job_id, argMax(user_id, version) AS a_user, argMax(model, version) AS a_model,
    argMax(language, version) AS a_language, argMax(status, version) AS a_status, created_at,
    argMax(media_ms, version) AS a_media, argMax(processing_ms, version) AS a_processing, argMax(error_code, version) AS a_error
FROM jobs
WHERE reseller_id = ?
GROUP BY org_id, job_id, created_at
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`,
			wantArgs: []any{"r1", 51},
		},
		{
			name: "filters, window and cursor",
			q: activityQuery{reseller: "r1", orgs: []string{"o1"}, statuses: []string{"created", "processing"}, models: []string{"m"},
				after: &cursor{CreatedAt: at, OrgID: "o1", JobID: "j1"}, since: at.Add(-time.Hour), limit: 3},
			wantSQL: `SELECT org_id, job_id, argMax(user_id, version) AS a_user, argMax(model, version) AS a_model,
    argMax(language, version) AS a_language, argMax(status, version) AS a_status, created_at,
    argMax(media_ms, version) AS a_media, argMax(processing_ms, version) AS a_processing, argMax(error_code, version) AS a_error
FROM jobs_by_org
WHERE reseller_id = ?
  AND org_id IN (SELECT arrayJoin(?))
  AND model IN (SELECT arrayJoin(?))
  AND created_at >= ?
  AND (created_at < ? OR (created_at = ? AND (org_id < ? OR (org_id = ? AND job_id < ?))))
GROUP BY org_id, job_id, created_at
HAVING has(?, a_status)
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`,
			wantArgs: []any{"r1", []string{"o1"}, []string{"m"}, at.Add(-time.Hour), at, at, "o1", "o1", "j1", []string{"created", "processing"}, 3},
		},
		{
			name: "finished jobs",
			q:    activityQuery{reseller: "r1", statuses: []string{"failed"}, jobIDs: []string{"j1"}, limit: 3},
			wantSQL: `SELECT org_id, job_id, argMax(user_id, version) AS a_user, argMax(model, version) AS a_model,
    argMax(language, version) AS a_language, argMax(status, version) AS a_status, created_at,
    argMax(media_ms, version) AS a_media, argMax(processing_ms, version) AS a_processing, argMax(error_code, version) AS a_error
FROM jobs
WHERE reseller_id = ?
  AND job_id IN (SELECT arrayJoin(?))
  AND status IN (SELECT arrayJoin(?))
GROUP BY org_id, job_id, created_at
HAVING has(?, a_status)
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`,
			wantArgs: []any{"r1", []string{"j1"}, []string{"failed"}, []string{"failed"}, 3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.q.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}

func TestUsageQueryBuild(t *testing.T) {
	from, to := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	nov, jan := from, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	amsNov, amsJan := nov.Add(-time.Hour), jan.Add(-time.Hour)
	cases := []struct {
		name     string
		q        usageQuery
		wantSQL  string
		wantArgs []any
	}{
		{
			name: "totals",
			q:    usageQuery{reseller: "r1", from: from, to: to},
			wantSQL: `SELECT sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    toUInt64(0) AS distinct_users
FROM usage_reseller_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket < ?`,
			wantArgs: []any{"r1", from, to},
		},
		{
			name: "series with its totals row",
			q:    usageQuery{reseller: "r1", from: from, to: to, granularity: "day", tz: "UTC", users: true, totals: true},
			wantSQL: `SELECT toUInt32(toStartOfDay(bucket, ?)) AS period,
    sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    uniqExactMerge(users) AS distinct_users
FROM usage_reseller_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket < ?
GROUP BY period WITH TOTALS
ORDER BY period`,
			wantArgs: []any{"UTC", "r1", from, to},
		},
		{
			name: "totals forced to the model level",
			q:    usageQuery{reseller: "r1", from: from, to: to, level: levelModel},
			wantSQL: `SELECT sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    toUInt64(0) AS distinct_users
FROM usage_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket < ?`,
			wantArgs: []any{"r1", from, to},
		},
		{
			name: "by organization: whole days from usage_org_1d",
			q: usageQuery{reseller: "r1", from: from, to: to, granularity: "day", tz: "UTC", groupBy: []string{"organization"}, plans: []string{"pro"}, users: true,
				days: [][2]time.Time{{from, from.Add(12 * time.Hour)}}},
			wantSQL: `SELECT toUInt32(toStartOfDay(bucket, ?)) AS period,
    org_id,
    sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    uniqExactMerge(users) AS distinct_users
FROM (
    SELECT reseller_id, org_id, day AS bucket, jobs_completed, jobs_failed, media_ms, processing_ms, users
    FROM usage_org_1d
    WHERE reseller_id = ?
      AND ((day >= ? AND day < ?))
      AND org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))
    UNION ALL
    SELECT reseller_id, org_id, bucket, jobs_completed, jobs_failed, media_ms, processing_ms, users
    FROM usage_15m_by_time
    WHERE reseller_id = ?
      AND ((bucket >= ? AND bucket < ?))
      AND org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))
)
GROUP BY period, org_id
ORDER BY period, org_id`,
			wantArgs: []any{"UTC", "r1", from, from.Add(12 * time.Hour), "r1", []string{"pro"}, "r1", from.Add(12 * time.Hour), to, "r1", []string{"pro"}},
		},
		{
			name: "by organization: a month whole, the buckets outside the range taken off",
			q: usageQuery{reseller: "r1", from: from.Add(4 * time.Hour), to: from.AddDate(0, 0, 19), groupBy: []string{"organization"},
				months: [][2]time.Time{{from, from.AddDate(0, 1, 0)}},
				minus:  [][2]time.Time{{from, from.Add(4 * time.Hour)}, {from.AddDate(0, 0, 19), from.AddDate(0, 1, 0)}}},
			wantSQL: `SELECT org_id,
    toUInt64(sumMergeIf(media_ms, sign > 0) - sumMergeIf(media_ms, sign < 0)) AS media_ms,
    toUInt64(sumMergeIf(jobs_completed, sign > 0) - sumMergeIf(jobs_completed, sign < 0)) AS jobs_completed,
    toUInt64(sumMergeIf(jobs_failed, sign > 0) - sumMergeIf(jobs_failed, sign < 0)) AS jobs_failed,
    toUInt64(sumMergeIf(processing_ms, sign > 0) - sumMergeIf(processing_ms, sign < 0)) AS processing_ms,
    toUInt64(0) AS distinct_users
FROM (
    SELECT reseller_id, org_id, month AS bucket, jobs_completed, jobs_failed, media_ms, processing_ms, users, jobs_created, toInt8(1) AS sign
    FROM usage_org_1mo
    WHERE reseller_id = ?
      AND ((month >= ? AND month < ?))
    UNION ALL
    SELECT reseller_id, org_id, bucket, jobs_completed, jobs_failed, media_ms, processing_ms, users, jobs_created, toInt8(-1) AS sign
    FROM usage_15m_by_time
    WHERE reseller_id = ?
      AND ((bucket >= ? AND bucket < ?) OR (bucket >= ? AND bucket < ?))
)
GROUP BY org_id
HAVING jobs_completed + jobs_failed + toUInt64(sumMergeIf(jobs_created, sign > 0) - sumMergeIf(jobs_created, sign < 0)) > 0
ORDER BY org_id`,
			wantArgs: []any{"r1", from, from.AddDate(0, 1, 0), "r1", from, from.Add(4 * time.Hour), from.AddDate(0, 0, 19), from.AddDate(0, 1, 0)},
		},
		{
			name: "by day in a zone, two dimensions, every filter",
			q: usageQuery{reseller: "r1", from: from, to: to, granularity: "day", tz: "Asia/Kolkata", groupBy: []string{"organization", "language"},
				orgs: []string{"o1"}, models: []string{"m"}, languages: []string{"en"}, plans: []string{"pro"}, users: true},
			wantSQL: `SELECT toUInt32(toStartOfDay(bucket, ?)) AS period,
    org_id,
    language,
    sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    uniqExactMerge(users) AS distinct_users
FROM usage_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket < ?
  AND org_id IN (SELECT arrayJoin(?))
  AND model IN (SELECT arrayJoin(?))
  AND language IN (SELECT arrayJoin(?))
  AND org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))
GROUP BY period, org_id, language
ORDER BY period, org_id, language`,
			wantArgs: []any{"Asia/Kolkata", "r1", from, to, []string{"o1"}, []string{"m"}, []string{"en"}, "r1", []string{"pro"}},
		},
		{
			name: "whole days from usage_1d",
			q: usageQuery{reseller: "r1", from: from, to: to, granularity: "day", tz: "UTC", models: []string{"m"},
				days: [][2]time.Time{{from, from.Add(12 * time.Hour)}}, level: levelModel},
			wantSQL: `SELECT toUInt32(toStartOfDay(bucket, ?)) AS period,
    sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    toUInt64(0) AS distinct_users
FROM (
    SELECT reseller_id, org_id, day AS bucket, model, language, jobs_completed, jobs_failed, media_ms, processing_ms, users
    FROM usage_1d
    WHERE reseller_id = ?
      AND ((day >= ? AND day < ?))
      AND model IN (SELECT arrayJoin(?))
    UNION ALL
    SELECT reseller_id, org_id, bucket, model, language, jobs_completed, jobs_failed, media_ms, processing_ms, users
    FROM usage_15m_by_time
    WHERE reseller_id = ?
      AND ((bucket >= ? AND bucket < ?))
      AND model IN (SELECT arrayJoin(?))
)
GROUP BY period
ORDER BY period`,
			wantArgs: []any{"UTC", "r1", from, from.Add(12 * time.Hour), []string{"m"}, "r1", from.Add(12 * time.Hour), to, []string{"m"}},
		},
		{
			name: "by month and model, the reseller's model buckets",
			q:    usageQuery{reseller: "r2", from: from, to: to, granularity: "month", tz: "UTC", groupBy: []string{"model"}, users: true},
			wantSQL: `SELECT toYYYYMMDD(toStartOfMonth(bucket, ?)) AS period,
    model,
    sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    uniqExactMerge(users) AS distinct_users
FROM usage_reseller_model_15m
WHERE reseller_id = ?
  AND bucket >= ?
  AND bucket < ?
GROUP BY period, model
ORDER BY period, model`,
			wantArgs: []any{"UTC", "r2", from, to},
		},
		{
			// Europe/Amsterdam's months start an hour before the UTC ones
			// (2026-10-31 23:00Z, 11-30 23:00Z, 12-31 23:00Z): that hour is
			// read once, added to its own period and taken off its UTC month's.
			name: "by month in a zone, UTC months shifted",
			q: usageQuery{reseller: "r1", from: amsNov, to: amsJan, granularity: "month", tz: "Europe/Amsterdam",
				groupBy: []string{"organization"}, shift: &monthShift{from: nov, to: jan, zones: [][2]time.Time{
					{amsNov, nov}, {amsNov.AddDate(0, 1, 0), nov.AddDate(0, 1, 0)}, {amsJan, jan}}}},
			wantSQL: `SELECT period,
    org_id,
    toUInt64(sumMergeIf(media_ms, sign > 0) - sumMergeIf(media_ms, sign < 0)) AS media_ms,
    toUInt64(sumMergeIf(jobs_completed, sign > 0) - sumMergeIf(jobs_completed, sign < 0)) AS jobs_completed,
    toUInt64(sumMergeIf(jobs_failed, sign > 0) - sumMergeIf(jobs_failed, sign < 0)) AS jobs_failed,
    toUInt64(sumMergeIf(processing_ms, sign > 0) - sumMergeIf(processing_ms, sign < 0)) AS processing_ms,
    toUInt64(0) AS distinct_users
FROM (
    SELECT toYYYYMMDD(toStartOfMonth(month + 15 * 86400, ?)) AS period, org_id, toInt8(1) AS sign,
        media_ms, jobs_completed, jobs_failed, processing_ms, jobs_created
    FROM usage_org_1mo
    WHERE reseller_id = ?
      AND month >= ?
      AND month < ?
    UNION ALL
    SELECT tupleElement(ps, 1) AS period, org_id, tupleElement(ps, 2) AS sign,
        media_ms, jobs_completed, jobs_failed, processing_ms, jobs_created
    FROM (
        SELECT org_id, media_ms, jobs_completed, jobs_failed, processing_ms, jobs_created, arrayJoin([
            tuple(toYYYYMMDD(toStartOfMonth(bucket, ?)), if(bucket >= ? AND bucket < ?, toInt8(1), toInt8(0))),
            tuple(toYYYYMMDD(toStartOfMonth(toStartOfDay(bucket, 'UTC') - (toDayOfMonth(bucket, 'UTC') - 1) * 86400 + 15 * 86400, ?)), if(bucket >= ? AND bucket < ?, toInt8(-1), toInt8(0)))]) AS ps
        FROM usage_month_edges
        WHERE reseller_id = ?
          AND ((bucket >= ? AND bucket < ?) OR (bucket >= ? AND bucket < ?) OR (bucket >= ? AND bucket < ?))
    )
    WHERE tupleElement(ps, 2) != 0
)
GROUP BY period, org_id
HAVING jobs_completed + jobs_failed + toUInt64(sumMergeIf(jobs_created, sign > 0) - sumMergeIf(jobs_created, sign < 0)) > 0
ORDER BY period, org_id`,
			wantArgs: []any{"Europe/Amsterdam", "r1", nov, jan, "Europe/Amsterdam", amsNov, amsJan, "Europe/Amsterdam", nov, jan,
				"r1", amsNov, nov, amsNov.AddDate(0, 1, 0), nov.AddDate(0, 1, 0), amsJan, jan},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.q.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}

// zoneCheckSQL applies every granularity's period expression to 15-minute
// buckets from a start, for comparison with floorPeriod.
func zoneCheckSQL() string {
	return `SELECT toUInt32(bucket) AS b, ` + granularities["hour"] + ` AS hour, ` + granularities["day"] + ` AS day, ` +
		granularities["week"] + ` AS week, ` + granularities["month"] + ` AS month
FROM (SELECT toDateTime(toUInt32(?) + number * 900) AS bucket FROM system.numbers LIMIT ?)
ORDER BY b`
}

var zoneCases = []struct {
	tz    string
	start time.Time
}{
	{"Asia/Kolkata", time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)},
	{"Asia/Kathmandu", time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)},
	{"America/New_York", time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)}, // DST ends 2026-11-01 06:00Z
	{"America/New_York", time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)},   // DST starts 2026-03-08 07:00Z
	{"Pacific/Chatham", time.Date(2026, 9, 26, 0, 0, 0, 0, time.UTC)},   // +12:45 to +13:45 on 2026-09-27
	{"Pacific/Chatham", time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},  // month and week edges
}

const zoneBuckets = 4 * 24 * 3 // three days of 15-minute buckets

// TestOrgsQueryFiltered: the filters apply outside FINAL, values stay
// bound, and the name key comes with each row.
func TestOrgsQueryFiltered(t *testing.T) {
	cases := []struct {
		name string
		oq   orgsQuery
		want string
		args []any
	}{
		{"no filter", orgsQuery{reseller: "r1"}, `SELECT org_id, name, plan, status, created_at, lowerUTF8(name) AS name_key
FROM (SELECT org_id, name, plan, status, created_at FROM organizations FINAL WHERE reseller_id = ?)
WHERE 1`, []any{"r1"}},
		{"search, plans and statuses", orgsQuery{reseller: "r1", needle: "x'y", plans: []string{"pro"}, statuses: []string{"active", "trial"}},
			`SELECT org_id, name, plan, status, created_at, lowerUTF8(name) AS name_key
FROM (SELECT org_id, name, plan, status, created_at FROM organizations FINAL WHERE reseller_id = ?)
WHERE 1
  AND position(lowerUTF8(name), ?) > 0
  AND plan IN (SELECT arrayJoin(?))
  AND status IN (SELECT arrayJoin(?))`, []any{"r1", "x'y", []string{"pro"}, []string{"active", "trial"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.oq.filtered()
			checkBuilt(t, sql, args, tc.want, tc.args)
		})
	}
}

// TestSortOrgs: each sort's key, its direction, the id tie-break in the
// same direction, and organizations without a quota last either way.
func TestSortOrgs(t *testing.T) {
	at := func(day int) time.Time { return time.Date(2026, 11, day, 0, 0, 0, 0, time.UTC) }
	org := func(id, nameKey, plan, status string, created time.Time, users, ms, quota uint64) orgRow {
		return orgRow{orgSummary: orgSummary{ID: id, Plan: plan, Status: status, CreatedAt: created, Users: users, QuotaMinutes: quota}, nameKey: nameKey, ms: ms}
	}
	rows := []orgRow{
		org("o1", "beta", "pro", "active", at(3), 2, 60_000, 100),   // 1,000 thousandths; share 0.01
		org("o2", "alpha", "starter", "trial", at(1), 5, 59_990, 0), // rounds to the same usage as o1
		org("o3", "beta", "pro", "suspended", at(2), 2, 0, 10),      // name tie with o1
		org("o4", "ähm", "enterprise", "active", at(2), 0, 120_000, 0),
		org("o5", "gamma", "pro", "active", at(5), 9, 600_000, 1), // share 1.0
	}
	cases := []struct {
		key  string
		desc bool
		want string
	}{
		{"name", false, "o2 o1 o3 o5 o4"}, // byte order of the lower-case keys: "ä" after ASCII
		{"name", true, "o4 o5 o3 o1 o2"},
		{"usage", false, "o3 o1 o2 o4 o5"},
		{"usage", true, "o5 o4 o2 o1 o3"},
		{"created", false, "o2 o3 o4 o1 o5"},
		{"created", true, "o5 o1 o4 o3 o2"},
		{"users", false, "o4 o1 o3 o2 o5"},
		{"users", true, "o5 o2 o3 o1 o4"},
		{"plan", false, "o4 o1 o3 o5 o2"},
		{"plan", true, "o2 o5 o3 o1 o4"},
		{"status", false, "o1 o4 o5 o3 o2"},
		{"status", true, "o2 o3 o5 o4 o1"},
		{"quota", false, "o3 o1 o5 o2 o4"},
		{"quota", true, "o5 o1 o3 o4 o2"},
	}
	for _, tc := range cases {
		name := tc.key
		if tc.desc {
			name += " desc"
		}
		t.Run(name, func(t *testing.T) {
			got := slices.Clone(rows)
			sortOrgs(got, tc.key, tc.desc)
			ids := make([]string, len(got))
			for i, o := range got {
				ids[i] = o.ID
			}
			if s := strings.Join(ids, " "); s != tc.want {
				t.Errorf("order %s, want %s", s, tc.want)
			}
		})
	}
}

// TestQuotaShare: usage over quota, from the usage the API shows
// (thousandths of a minute), rounded half up to 4 digits.
func TestQuotaShare(t *testing.T) {
	cases := []struct {
		name      string
		ms, quota uint64
		want      *float64
	}{
		{"no quota", 60000, 0, nil},
		{"none used", 0, 1000, new(0.0)},
		{"a twentieth", 3000 * 1000, 1000, new(0.05)},
		{"half up", 60, 20, new(0.0001)}, // 0.001 min of 20: 0.00005
		{"below half", 29, 20, new(0.0)}, // rounds to 0 thousandths
		{"over quota", 601 * 60000, 300, new(2.0033)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := quotaShare(tc.ms, tc.quota)
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("quotaShare(%d, %d) = %v, want %v", tc.ms, tc.quota, deref(got), deref(tc.want))
			}
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// TestTimeZoneBuckets: ClickHouse's period of every 15-minute bucket, in
// zones with 30- and 45-minute offsets and across DST changes, is the one
// Go computes from the IANA database, and so is its key.
func TestTimeZoneBuckets(t *testing.T) {
	ch := testenv.ClickHouse(t)
	for _, zc := range zoneCases {
		t.Run(zc.tz+"/"+zc.start.Format(time.DateOnly), func(t *testing.T) {
			loc, err := loadZone(zc.tz)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := ch.Conn.Query(t.Context(), zoneCheckSQL(), zc.tz, zc.tz, zc.tz, zc.tz, uint32(zc.start.Unix()), zoneBuckets)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n, bad := 0, 0
			for rows.Next() {
				var b, hour, day, week, month uint32
				if err := rows.Scan(&b, &hour, &day, &week, &month); err != nil {
					t.Fatal(err)
				}
				n++
				at := time.Unix(int64(b), 0)
				got := map[string]time.Time{
					"hour": periodStart(hour, "hour", loc), "day": periodStart(day, "day", loc),
					"week": periodStart(week, "week", loc), "month": periodStart(month, "month", loc),
				}
				keys := map[string]uint32{"hour": hour, "day": day, "week": week, "month": month}
				for g, p := range got {
					want := floorPeriod(at, g, loc)
					if !want.Equal(p) && bad < 10 {
						bad++
						t.Errorf("%s %s: ClickHouse %s, Go %s", at.UTC().Format(time.RFC3339), g, p.Format(time.RFC3339), want.Format(time.RFC3339))
					}
					if k := periodKey(want, g, loc); k != keys[g] && bad < 10 {
						bad++
						t.Errorf("%s %s: ClickHouse key %d, Go %d", at.UTC().Format(time.RFC3339), g, keys[g], k)
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != zoneBuckets {
				t.Fatalf("%d rows, want %d", n, zoneBuckets)
			}
		})
	}
}

// testSQLOnChDB runs every query the API issues, on the fixture's events,
// on ClickHouse 18.16 and on current ClickHouse (chDB), and compares.
func testSQLOnChDB(t *testing.T, env *apiEnv) {
	// Copies of r1's completed jobs on both sides of each UTC month start,
	// within a day: the buckets that zones move to another month. Their
	// users are new: one per UTC month at the whole and half hours, so
	// seen on both sides of a zone's month start, one per event otherwise
	// (Kathmandu's month starts at -5h45m).
	edges := []string{"-13h", "-11h15m", "-5h45m", "-5h30m", "-1h", "-15m", "30m", "4h45m", "12h"}
	var edgeTimes []string
	for _, m := range []time.Time{time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} {
		for _, e := range edges {
			d, err := time.ParseDuration(e)
			if err != nil {
				t.Fatal(err)
			}
			edgeTimes = append(edgeTimes, strconv.FormatInt(m.Add(d).Unix(), 10))
		}
	}
	setup := append(eventsInserts(t, env.ch), `INSERT INTO events (id, type, source, time, time_ms, reseller_id, org_id, data, job_id, user_id, model, language, created_at, media_ms)
SELECT concat(id, '-edge-', toString(t)), type, source, toDateTime(t), t * 1000, reseller_id, org_id, data, job_id,
    concat(user_id, '-edge-', if(t % 1800 = 0, toString(toStartOfMonth(toDateTime(t))), toString(t))), model, language, created_at, media_ms
FROM events ARRAY JOIN [`+strings.Join(edgeTimes, ", ")+`] AS t
WHERE reseller_id = 'r1' AND type = 'job.completed' AND id NOT LIKE '%-edge-%'`)
	ch := testenv.ClickHouse(t) // a second, empty database: setup fills it
	from, to := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	month := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	queries := []testenv.NamedQuery{
		{Name: "org counts", SQL: orgCountsSQL, Args: []any{month, "r1"}},
		{Name: "subscriptions as of", SQL: subscriptionsAsOfSQL, Args: []any{fixedNow, fixedNow, fixedNow, month, month, month, "r1", fixedNow, month}},
		{Name: "subscriptions as of r2", SQL: subscriptionsAsOfSQL, Args: []any{month, month, month, fixedNow, fixedNow, fixedNow, "r2", month, fixedNow}},
		{Name: "minutes", SQL: minutesSQL, Args: []any{month, fixedNow, month.AddDate(0, -1, 0), fixedNow.AddDate(0, -1, 0), "r1", month.AddDate(0, -1, 0), fixedNow}},
		{Name: "users as of", SQL: usersAsOfSQL, Args: []any{fixedNow, month, "r1", fixedNow, month}},
		{Name: "org names", SQL: orgNamesSQL, Args: []any{"r1", []string{"o1", "o2", "o9"}}},
		{Name: "org", SQL: orgSQL, Args: []any{"r1", "o1"}},
		{Name: "subs", SQL: subsSQL + "", Args: []any{"r1"}},
		{Name: "sub", SQL: subSQL, Args: []any{"r1", "o2"}},
		{Name: "user counts", SQL: userCountsSQL, Args: []any{"r1"}},
		{Name: "org users", SQL: orgUsersSQL, Args: []any{"r1", "o1"}},
	}
	add := func(name, sql string, args []any) {
		queries = append(queries, testenv.NamedQuery{Name: name, SQL: sql, Args: args})
	}
	for i, aq := range []activityQuery{
		{reseller: "r1", limit: 100},
		{reseller: "r1", orgs: []string{"o1", "o2"}, statuses: []string{"created", "processing"}, models: []string{"nova-2"}, limit: 100},
		{reseller: "r1", after: &cursor{CreatedAt: time.Date(2026, 11, 19, 11, 0, 0, 0, time.UTC), OrgID: "o2", JobID: "j07"}, limit: 100},
		{reseller: "r1", statuses: []string{"completed"}, since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), limit: 100},
		{reseller: "r1", orgs: []string{"o1"}, jobIDs: []string{"j03", "j04", "j05"}, statuses: []string{"completed", "failed"}, limit: 100},
	} {
		sql, args := aq.build()
		add(fmt.Sprintf("activity %d", i), sql, args)
		if i < 3 {
			sql, args = aq.openJobs()
			add(fmt.Sprintf("open jobs %d", i), sql, args)
		}
	}
	for i, g := range []activityGuide{
		{reseller: "r1", orgs: []string{"o1", "o2"}, since: month.AddDate(0, -1, 0), upper: fixedNow},
		{reseller: "r1", orgs: []string{"o1"}, models: []string{"nova-2", "whisper-large"}, statuses: []string{"completed", "failed"}, since: month, upper: fixedNow},
		{reseller: "r1", statuses: []string{"failed"}, since: month, upper: fixedNow},
	} {
		sql, args := g.build()
		add(fmt.Sprintf("activity guide %d", i), sql, args)
	}
	add("invoices", invoicesSQL, []any{"r1", month, to})
	add("quotas", quotasSQL, []any{"r1"})
	for i, oq := range []orgsQuery{
		{reseller: "r1"},
		{reseller: "r1", needle: "a", plans: []string{"pro", "starter"}, statuses: []string{"active", "trial"}},
		{reseller: "r2", statuses: []string{"suspended"}},
	} {
		sql, args := oq.filtered()
		add(fmt.Sprintf("orgs filtered %d", i), sql, args)
	}
	orgUsage := usageQuery{reseller: "r1", from: month, to: fixedNow, groupBy: []string{"organization"}}
	orgUsage.months, orgUsage.days = wholeSpans(month, fixedNow, "month", time.UTC)
	sql, args := orgUsage.build()
	add("orgs usage", sql, args)
	for i, nq := range []notificationsQuery{
		{reseller: "r1", limit: 100},
		{reseller: "r2", types: []string{"system.notice", "invoice.payment_failed"}, after: &noteCursor{timeMS: uint64(fixedNow.UnixMilli()), id: "zz"}, limit: 100},
	} {
		sql, args := nq.build()
		add(fmt.Sprintf("notifications %d", i), sql, args)
	}
	for i, aq := range []alertNotificationsQuery{
		{reseller: "r1", rules: alertKinds["usage"], limit: 100},
		{reseller: "r2", rules: alertKinds["billing"], after: &noteCursor{timeMS: uint64(fixedNow.UnixMilli()), id: "zz"}, limit: 100},
	} {
		sql, args := aq.build()
		add(fmt.Sprintf("alert notifications %d", i), sql, args)
	}
	sql, args = activityReportQuery("r1", from, to, []string{"o1", "o2"}, []string{"completed"}, []string{"nova-2", "whisper-large"}, 1000)
	add("activity report", sql, args)
	var hybrid, shifted []string
	for _, tz := range []string{"UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Pacific/Chatham"} {
		for _, g := range []string{"", "hour", "day", "week", "month"} {
			uq := usageQuery{reseller: "r1", from: from, to: to, granularity: g, tz: tz, groupBy: []string{"organization", "model"}, plans: []string{"pro", "starter"},
				users: tz != "Asia/Kolkata"}
			if g == "" && tz != "UTC" {
				continue
			}
			sql, args := uq.build()
			add("usage "+tz+" "+g, sql, args)
			loc, err := loadZone(tz)
			if err != nil {
				t.Fatal(err)
			}
			if uq.months, uq.days = wholeSpans(from, to, g, loc); len(uq.days)+len(uq.months) > 0 {
				sql, args = uq.build()
				add("usage "+tz+" "+g+" whole days", sql, args)
				hybrid = append(hybrid, "usage "+tz+" "+g)
			}
			if g == "month" && tz != "Asia/Kolkata" {
				// Sums only, on the zone's months: from usage_15m alone and
				// with UTC months moved to the zone's months.
				zf, zt := floorPeriod(from, g, loc), floorPeriod(to, g, loc)
				sums := usageQuery{reseller: "r1", from: zf.UTC(), to: zt.UTC(), granularity: g, tz: tz, groupBy: []string{"organization", "model"}, plans: []string{"pro", "starter"}}
				sql, args = sums.build()
				add("usage "+tz+" sums", sql, args)
				if sums.shift = shiftMonths(zf, zt, loc); sums.shift != nil {
					sql, args = sums.build()
					add("usage "+tz+" sums shifted", sql, args)
					shifted = append(shifted, "usage "+tz+" sums")
				}
			}
		}
	}
	// The organization and reseller tables against the model-level ones.
	var coarse []string
	resellerModel := 0
	for _, tz := range []string{"UTC", "Asia/Kathmandu", "America/New_York"} {
		loc, err := loadZone(tz)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"", "day", "month"} {
			for _, v := range []struct {
				name    string
				groupBy []string
				plans   []string
				want    usageLevel
			}{{"by org", []string{"organization"}, []string{"pro", "starter"}, levelOrg}, {"reseller", nil, nil, levelReseller},
				{"by model", []string{"model"}, nil, levelResellerModel}} {
				uq := usageQuery{reseller: "r1", from: from, to: to, granularity: g, tz: tz, groupBy: v.groupBy, plans: v.plans, users: tz != "America/New_York",
					totals: g != "" && len(v.groupBy) == 0 && tz != "America/New_York"}
				uq.months, uq.days = wholeSpans(from, to, g, loc)
				want := v.want
				if want == levelReseller && uq.users && len(uq.days)+len(uq.months) > 0 {
					want = levelOrg
				}
				if want == levelResellerModel && (len(uq.months) > 0 || uq.users && len(uq.days) > 0) {
					want = levelModel
				}
				if got := uq.tables(); got != want {
					t.Errorf("%s %s %s: level %d, want %d", v.name, tz, g, got, want)
				}
				if want == levelResellerModel {
					resellerModel++
				}
				name := "coarse " + v.name + " " + tz + " " + g
				sql, args := uq.build()
				add(name, sql, args)
				uq.level = levelModel
				sql, args = uq.build()
				add(name+" model level", sql, args)
				coarse = append(coarse, name)
				if g == "month" && tz != "UTC" {
					zf, zt := floorPeriod(from, g, loc), floorPeriod(to, g, loc)
					sums := usageQuery{reseller: "r1", from: zf.UTC(), to: zt.UTC(), granularity: g, tz: tz, groupBy: v.groupBy, plans: v.plans,
						shift: shiftMonths(zf, zt, loc)}
					sql, args = sums.build()
					add(name+" shifted", sql, args)
					sums.level, sums.shift = levelModel, nil
					sql, args = sums.build()
					add(name+" shifted model level", sql, args)
					coarse = append(coarse, name+" shifted")
				}
			}
		}
	}
	if resellerModel == 0 {
		t.Error("no usage query read usage_reseller_model_15m")
	}
	// A range ending inside a month (as the current period ends now): the
	// month read whole, its buckets from the range's end on (r1's jobs of
	// the 19th and 20th and the copies on the 30th) taken off, against
	// its days and buckets.
	var tails []string
	for _, tz := range []string{"UTC", "Asia/Kolkata", "America/New_York"} {
		loc, err := loadZone(tz)
		if err != nil {
			t.Fatal(err)
		}
		end := time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC)
		for _, start := range []time.Time{startOfMonth(end, loc), time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)} {
			for _, v := range []struct {
				name    string
				groupBy []string
			}{{"by org", []string{"organization"}}, {"by org and model", []string{"organization", "model"}}} {
				uq := usageQuery{reseller: "r1", from: start.UTC(), to: end, tz: tz, groupBy: v.groupBy}
				uq.months, uq.days = wholeSpans(start, end, "", loc)
				name := "tail " + v.name + " " + tz + " from " + start.Format(time.DateOnly)
				sql, args := uq.build()
				add(name, sql, args)
				if uq.months, uq.days, uq.minus = tailMonth(uq.from, uq.to, end, uq.months, uq.days); uq.minus == nil {
					t.Fatalf("%s: the month is not read whole", name)
				}
				sql, args = uq.build()
				add(name+" month whole", sql, args)
				tails = append(tails, name)
			}
		}
	}
	// Distinct users from org_user_months and org_user_days against the
	// 15-minute states.
	var userMonths, withTotal, fromSlots, slotEdges []string
	for _, tz := range []string{"UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Pacific/Chatham"} {
		loc, err := loadZone(tz)
		if err != nil {
			t.Fatal(err)
		}
		for _, ug := range []struct{ unit, granularity, align string }{
			{"month", "", "month"}, {"month", "month", "month"}, {"day", "", "day"}, {"day", "day", "day"}, {"day", "week", "week"},
			{"day", "day", "month"},
		} {
			g := ug.granularity
			zf, zt := floorPeriod(from, ug.align, loc), floorPeriod(to, ug.align, loc)
			switch {
			case ug.unit == "day" && ug.align == "month":
				// The local October: in most zones one end lies in
				// another UTC month, within a day (a slot edge).
				zf = floorPeriod(from.AddDate(0, 1, 14), "month", loc)
				zt = nextPeriod(zf, "month", loc)
			case ug.unit == "day":
				// Two weeks from the start of the fixture's data.
				zf = floorPeriod(from.AddDate(0, 2, 0), ug.align, loc)
				zt = nextPeriod(nextPeriod(zf, "week", loc), "week", loc)
			}
			name := ug.unit + "s " + g
			if ug.align == "month" && ug.unit == "day" {
				name += " of a month"
			}
			for _, v := range []struct {
				name      string
				groupBy   []string
				orgs      []string
				plans     []string
				models    []string
				languages []string
			}{{name: "by org", groupBy: []string{"organization"}}, {name: "reseller"},
				{name: "by org filtered", groupBy: []string{"organization"}, orgs: []string{"o1", "o2"}, plans: []string{"pro", "starter"}},
				{name: "by model", groupBy: []string{"model"}},
				{name: "by org and language", groupBy: []string{"organization", "language"}},
				{name: "model and language filtered", models: []string{"nova-2"}, languages: []string{"en", "de"}}} {
				uq := usageQuery{reseller: "r1", from: zf.UTC(), to: zt.UTC(), granularity: g, tz: tz, groupBy: v.groupBy,
					orgs: v.orgs, plans: v.plans, models: v.models, languages: v.languages, users: true}
				modelLevel := uq.tables().hasModel()
				if modelLevel && ug.unit != "day" {
					continue
				}
				spans, ok := userSpansOf(zf, zt, g, ug.unit, loc)
				if !ok {
					t.Fatalf("%s %s: no user %ss", tz, g, ug.unit)
				}
				name := "user " + name + " " + v.name + " " + tz
				sql, args := userSpansQuery{usage: uq, unit: ug.unit, spans: spans}.build()
				org := "''"
				if len(v.groupBy) > 0 {
					var cols []string
					for _, d := range v.groupBy {
						cols = append(cols, dimensions[d])
					}
					org = "concat(" + strings.Join(cols, ", '/', ") + ")"
					if len(cols) == 1 {
						org = cols[0]
					}
				}
				// The reference: the user states of the tables the
				// usage query would read without spans.
				level := levelOrg
				if modelLevel {
					level = levelModel
				}
				period := "period"
				if g == "" {
					period = "1"
				}
				wrap := func(sql string) string {
					return "SELECT toUInt32(" + period + ") AS p, " + org + " AS o, toUInt64(distinct_users) AS u FROM (\n" + sql + "\n) ORDER BY p, o"
				}
				add(name, wrap(sql), args)
				if g != "" {
					sql, args = userSpansQuery{usage: uq, unit: ug.unit, spans: spans, total: true}.build()
					add(name+" with the total", wrap(sql), args)
					if ug.unit == "day" {
						sq, ok := userSlotsOf(uq, zf, zt, g, loc)
						if !ok {
							t.Fatalf("%s: no user slots", name)
						}
						sql, args = sq.build()
						add(name+" from slots", wrap(sql), args)
						fromSlots = append(fromSlots, name)
						if len(sq.edges) > 0 {
							slotEdges = append(slotEdges, name)
						}
					}
					whole := uq
					whole.granularity, whole.level = "", level
					sql, args = whole.build()
					add(name+" total from day states", "SELECT toUInt32(1) AS p, "+org+" AS o, toUInt64(distinct_users) AS u FROM (\n"+sql+"\n) ORDER BY p, o", args)
					withTotal = append(withTotal, name)
				}
				uq.level = level
				sql, args = uq.build()
				add(name+" from day states", wrap(sql), args)
				userMonths = append(userMonths, name)
			}
		}
	}
	for _, zc := range zoneCases {
		add("zones "+zc.tz+" "+zc.start.Format(time.DateOnly), zoneCheckSQL()+"", []any{zc.tz, zc.tz, zc.tz, zc.tz, uint32(zc.start.Unix()), zoneBuckets})
	}
	res := testenv.CompareWithChDB(t, ch, setup, queries)
	if len(hybrid) < 10 {
		t.Errorf("only %d usage queries read whole days", len(hybrid))
	}
	if len(shifted) < 3 {
		t.Errorf("only %d usage queries moved UTC months", len(shifted))
	}
	for _, name := range shifted {
		if got, want := res[name+" shifted"].Rows, res[name].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s: with usage_1mo moved %v, from usage_15m alone %v", name, got, want)
		}
	}
	for _, name := range coarse {
		if got, want := res[name].Rows, res[name+" model level"].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s: %v, from the model-level tables %v", name, got, want)
		}
	}
	for _, name := range userMonths {
		if got, want := res[name].Rows, res[name+" from day states"].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s: %v, from the day states %v", name, got, want)
		}
	}
	for _, name := range withTotal {
		want := append(slices.Clone(res[name+" total from day states"].Rows), res[name].Rows...)
		if got := res[name+" with the total"].Rows; !reflect.DeepEqual(got, want) || len(res[name].Rows) == 0 {
			t.Errorf("%s with the total: %v, want %v", name, got, want)
		}
	}
	// user_month_slots gives what org_user_days gives: each period and the
	// total.
	if len(fromSlots) < 80 || len(slotEdges) < 40 {
		t.Errorf("only %d distinct-user queries read user_month_slots, %d with edges from org_user_days", len(fromSlots), len(slotEdges))
	}
	for _, name := range fromSlots {
		if got, want := res[name+" from slots"].Rows, res[name+" with the total"].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s from user_month_slots: %v, from org_user_days %v", name, got, want)
		}
	}
	for _, name := range tails {
		if got, want := res[name+" month whole"].Rows, res[name].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s: with the month whole %v, from its days and buckets %v", name, got, want)
		}
	}
	for _, name := range hybrid {
		if got, want := res[name+" whole days"].Rows, res[name].Rows; !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s: with usage_1d %v, from usage_15m alone %v", name, got, want)
		}
	}
	// r1's jobs: the fixture's, and those the pagination test adds when it
	// ran first.
	var r1Jobs uint64
	if err := env.ch.Conn.QueryRow(t.Context(), "SELECT uniqExact(job_id) FROM jobs WHERE reseller_id = 'r1'").Scan(&r1Jobs); err != nil {
		t.Fatal(err)
	}
	if r1Jobs < 10 {
		t.Fatalf("the fixture has %d jobs of r1, want at least 10", r1Jobs)
	}
	for name, want := range map[string]int{"orgs filtered 0": 3, "activity 0": int(r1Jobs), "user counts": 2, "zones Asia/Kolkata 2026-11-18": zoneBuckets} {
		if got := len(res[name].Rows); got != want {
			t.Errorf("query %s: %d rows, want %d", name, got, want)
		}
	}
}

// insertEvents writes job events straight into the events table (the
// projector's insert, reduced to the columns jobs use); the materialized
// views derive the rest.
func insertEvents(t *testing.T, ch *testenv.CH, events []*schemas.Event) {
	t.Helper()
	b, err := ch.Conn.PrepareBatch(t.Context(), `INSERT INTO events (id, type, source, time, time_ms, reseller_id, org_id, data, job_id, user_id, model, language, created_at, media_ms)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		var d schemas.JobData
		if err := json.Unmarshal(e.Data, &d); err != nil || !strings.HasPrefix(e.Type, "job.") {
			t.Fatalf("insertEvents takes job events only: %s %v", e.Type, err)
		}
		if err := b.Append(e.ID, e.Type, e.Source, e.Time, uint64(e.Time.UnixMilli()), e.ResellerID, e.OrgID, string(e.Data),
			d.JobID, d.UserID, d.Model, d.Language, d.CreatedAt, uint64(d.MediaDurationSeconds*1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

func TestKeySpecValidate(t *testing.T) {
	cases := []struct {
		name string
		spec KeySpec
		ok   bool
	}{
		{"reseller", KeySpec{Name: "dash", ResellerID: "acme-media"}, true},
		{"operator", KeySpec{Name: "ops", Operator: true}, true},
		{"no name", KeySpec{ResellerID: "r1"}, false},
		{"no reseller", KeySpec{Name: "dash"}, false},
		{"bad reseller", KeySpec{Name: "dash", ResellerID: "r1' OR 1=1"}, false},
		{"operator with reseller", KeySpec{Name: "ops", Operator: true, ResellerID: "r1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.spec.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestTailMonth(t *testing.T) {
	utc := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	month := [2]time.Time{utc(1, 0), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	oct := [2]time.Time{time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), utc(1, 0)}
	cases := []struct {
		name                 string
		from, to, now        time.Time
		months, days         [][2]time.Time
		wantMonths, wantDays [][2]time.Time
		wantMinus            [][2]time.Time
	}{
		{name: "the current month in UTC", from: utc(1, 0), to: utc(20, 12), now: utc(20, 12),
			days:       [][2]time.Time{{utc(1, 0), utc(20, 0)}},
			wantMonths: [][2]time.Time{month}, wantMinus: [][2]time.Time{{utc(20, 12), month[1]}}},
		{name: "west of UTC: the hours before the zone's month start taken off", from: utc(1, 5), to: utc(20, 12), now: utc(20, 12),
			days:       [][2]time.Time{{utc(2, 0), utc(20, 0)}},
			wantMonths: [][2]time.Time{month}, wantMinus: [][2]time.Time{{utc(1, 0), utc(1, 5)}, {utc(20, 12), month[1]}}},
		{name: "east of UTC: the hours before the UTC month start are still read", from: utc(1, 0).Add(-330 * time.Minute), to: utc(20, 12), now: utc(20, 12),
			days:       [][2]time.Time{{utc(1, 0), utc(20, 0)}},
			wantMonths: [][2]time.Time{month}, wantMinus: [][2]time.Time{{utc(20, 12), month[1]}}},
		{name: "earlier whole months and days are kept", from: time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC), to: utc(20, 12), now: utc(20, 12),
			months:     [][2]time.Time{oct},
			days:       [][2]time.Time{{time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC), oct[0]}, {utc(1, 0), utc(20, 0)}},
			wantMonths: [][2]time.Time{oct, month}, wantDays: [][2]time.Time{{time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC), oct[0]}},
			wantMinus: [][2]time.Time{{utc(20, 12), month[1]}}},
		{name: "a range ending in the past", from: utc(1, 0), to: utc(20, 12), now: utc(21, 0),
			days: [][2]time.Time{{utc(1, 0), utc(20, 0)}}, wantDays: [][2]time.Time{{utc(1, 0), utc(20, 0)}}},
		{name: "a month starting a day or more before the range", from: utc(2, 0), to: utc(20, 12), now: utc(20, 12),
			days: [][2]time.Time{{utc(2, 0), utc(20, 0)}}, wantDays: [][2]time.Time{{utc(2, 0), utc(20, 0)}}},
		{name: "no whole day of the month", from: utc(1, 0).Add(-5 * time.Hour), to: utc(1, 20), now: utc(1, 20),
			days:     [][2]time.Time{{time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)}},
			wantDays: [][2]time.Time{{time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)}}},
		{name: "a range ending at a month start", from: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), to: utc(1, 0), now: utc(1, 0),
			months: [][2]time.Time{oct}, wantMonths: [][2]time.Time{oct}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			months, days, minus := tailMonth(tc.from, tc.to, tc.now, tc.months, tc.days)
			if fmt.Sprint(months) != fmt.Sprint(tc.wantMonths) || fmt.Sprint(days) != fmt.Sprint(tc.wantDays) || fmt.Sprint(minus) != fmt.Sprint(tc.wantMinus) {
				t.Errorf("tailMonth = months %v, days %v, minus %v\nwant months %v, days %v, minus %v", months, days, minus, tc.wantMonths, tc.wantDays, tc.wantMinus)
			}
		})
	}
}

func TestShiftMonthsZones(t *testing.T) {
	utc := func(s string) time.Time { return parseUTC(t, s) }
	cases := []struct {
		name, tz string
		from, to string // local month starts, as UTC
		want     [][2]string
	}{
		{"east of UTC", "Asia/Kolkata", "2025-12-31 18:30", "2026-02-28 18:30",
			[][2]string{{"2025-12-31 18:30", "2026-01-01 00:00"}, {"2026-01-31 18:30", "2026-02-01 00:00"}, {"2026-02-28 18:30", "2026-03-01 00:00"}}},
		{"45-minute offset", "Asia/Kathmandu", "2026-05-31 18:15", "2026-07-31 18:15",
			[][2]string{{"2026-05-31 18:15", "2026-06-01 00:00"}, {"2026-06-30 18:15", "2026-07-01 00:00"}, {"2026-07-31 18:15", "2026-08-01 00:00"}}},
		{"west of UTC across DST", "America/New_York", "2026-02-01 05:00", "2026-04-01 04:00",
			[][2]string{{"2026-02-01 00:00", "2026-02-01 05:00"}, {"2026-03-01 00:00", "2026-03-01 05:00"}, {"2026-04-01 00:00", "2026-04-01 04:00"}}},
		{"UTC months in winter", "Europe/London", "2026-01-01 00:00", "2026-04-30 23:00",
			[][2]string{{"2026-03-31 23:00", "2026-04-01 00:00"}, {"2026-04-30 23:00", "2026-05-01 00:00"}}},
		{"UTC", "UTC", "2026-01-01 00:00", "2026-03-01 00:00", nil},
		{"farthest east", "Pacific/Kiritimati", "2025-12-31 10:00", "2026-02-28 10:00",
			[][2]string{{"2025-12-31 10:00", "2026-01-01 00:00"}, {"2026-01-31 10:00", "2026-02-01 00:00"}, {"2026-02-28 10:00", "2026-03-01 00:00"}}},
		{"farthest west", "Etc/GMT+12", "2026-01-01 12:00", "2026-03-01 12:00",
			[][2]string{{"2026-01-01 00:00", "2026-01-01 12:00"}, {"2026-02-01 00:00", "2026-02-01 12:00"}, {"2026-03-01 00:00", "2026-03-01 12:00"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := loadZone(tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			sh := shiftMonths(utc(tc.from), utc(tc.to), loc)
			if sh == nil {
				t.Fatal("no shift")
			}
			if !nearMonthStarts(sh.zones) {
				t.Errorf("zones %v are not all within %d hours of a UTC month start: usage_month_edges lacks them", sh.zones, edgeHours)
			}
			var got [][2]string
			for _, z := range sh.zones {
				got = append(got, [2]string{z[0].Format("2006-01-02 15:04"), z[1].Format("2006-01-02 15:04")})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("zones %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNearMonthStarts(t *testing.T) {
	utc := func(s string) time.Time { return parseUTC(t, s) }
	cases := []struct {
		name   string
		ranges [][2]string
		want   bool
	}{
		{"none", nil, true},
		{"before and after month starts", [][2]string{{"2026-01-31 10:00", "2026-02-01 00:00"}, {"2026-03-01 00:00", "2026-03-01 14:00"}}, true},
		{"across a month start", [][2]string{{"2026-10-31 20:00", "2026-11-01 06:00"}}, true},
		{"year end", [][2]string{{"2025-12-31 18:30", "2026-01-01 00:00"}}, true},
		{"starts too early", [][2]string{{"2026-01-31 09:45", "2026-02-01 00:00"}}, false},
		{"ends too late", [][2]string{{"2026-03-01 00:00", "2026-03-01 14:15"}}, false},
		{"mid-month", [][2]string{{"2026-03-15 00:00", "2026-03-15 01:00"}}, false},
		{"one of two outside", [][2]string{{"2026-01-31 23:00", "2026-02-01 00:00"}, {"2026-02-10 00:00", "2026-02-10 01:00"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rs [][2]time.Time
			for _, r := range tc.ranges {
				rs = append(rs, [2]time.Time{utc(r[0]), utc(r[1])})
			}
			if got := nearMonthStarts(rs); got != tc.want {
				t.Errorf("nearMonthStarts(%v) = %v, want %v", tc.ranges, got, tc.want)
			}
		})
	}
}

func TestUserSpansQueryBuild(t *testing.T) {
	oct, nov, dec := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	b := nov.Add(-330 * time.Minute)
	d1, d2, d3 := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)
	db := d2.Add(-330 * time.Minute)
	tests := []struct {
		name     string
		q        userSpansQuery
		wantSQL  string
		wantArgs []any
	}{
		{"months by organization with a plan", userSpansQuery{
			usage: usageQuery{reseller: "r1", groupBy: []string{"organization"}, plans: []string{"pro"}},
			unit:  "month",
			spans: []userSpan{{oct, b, 20261001, 20261101}, {nov, dec, 20261101, 0}},
		}, `SELECT period, org_id, uniqExact(user_id) AS distinct_users
FROM (
    SELECT org_id, user_id,
        arrayJoin(arrayFilter(p -> p != 0, [
            if(toUInt32(finalizeAggregation(first_at)) < boundary, before, 0) AS in_before,
            if(toUInt32(finalizeAggregation(last_at)) >= boundary, after, 0) AS in_after])) AS period
    FROM (
        SELECT org_id, user_id, first_at, last_at, indexOf(?, toUInt32(month)) AS i,
            toUInt32(arrayElement(?, i)) AS boundary, toUInt32(arrayElement(?, i)) AS before,
            toUInt32(arrayElement(?, i)) AS after
        FROM org_user_months
        WHERE reseller_id = ?
          AND month >= ?
          AND month < ?
          AND org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))
    )
)
GROUP BY period, org_id
ORDER BY period, org_id`, []any{
			[]uint32{uint32(oct.Unix()), uint32(nov.Unix())}, []uint32{uint32(b.Unix()), uint32(dec.Unix())},
			[]uint32{20261001, 20261101}, []uint32{20261101, 0}, "r1", oct, dec, "r1", []string{"pro"},
		}},
		{"days of the reseller with the total", userSpansQuery{
			usage: usageQuery{reseller: "r1", orgs: []string{"o1"}},
			unit:  "day",
			spans: []userSpan{{d1, db.AddDate(0, 0, -1), 0, 7}, {d2, db, 7, 8}},
			total: true,
		}, `SELECT period, uniqExact(user_id) AS distinct_users
FROM (
    SELECT user_id,
        arrayJoin(arrayFilter(p -> p != 0, [
            if(toUInt32(finalizeAggregation(first_at)) < boundary, before, 0) AS in_before,
            if(toUInt32(finalizeAggregation(last_at)) >= boundary, after, 0) AS in_after,
            toUInt32(in_before + in_after != 0)])) AS period
    FROM (
        SELECT user_id, first_at, last_at, toUInt32(intDiv(toUInt32(day) - ?, 86400) + 1) AS i,
            toUInt32(arrayElement(?, i)) AS boundary, toUInt32(arrayElement(?, i)) AS before,
            toUInt32(arrayElement(?, i)) AS after
        FROM org_user_days
        WHERE reseller_id = ?
          AND day >= ?
          AND day < ?
          AND org_id IN (SELECT arrayJoin(?))
    )
)
GROUP BY period
ORDER BY period`, []any{
			uint32(d1.Unix()), []uint32{uint32(db.AddDate(0, 0, -1).Unix()), uint32(db.Unix())},
			[]uint32{0, 7}, []uint32{7, 8}, "r1", d1, d3, []string{"o1"},
		}},
		{"UTC days by organization, each in one period", userSpansQuery{
			usage: usageQuery{reseller: "r1", groupBy: []string{"organization"}},
			unit:  "day",
			spans: []userSpan{{d1, d2, uint32(d1.Unix()), 0}, {d2, d3, uint32(d2.Unix()), 0}},
		}, `SELECT period, org_id, uniqExact(user_id) AS distinct_users
FROM (
    SELECT org_id, user_id, toUInt32(arrayElement(?, toUInt32(intDiv(toUInt32(day) - ?, 86400) + 1))) AS period
    FROM org_user_days
    WHERE reseller_id = ?
      AND day >= ?
      AND day < ?
)
GROUP BY period, org_id
ORDER BY period, org_id`, []any{[]uint32{uint32(d1.Unix()), uint32(d2.Unix())}, uint32(d1.Unix()), "r1", d1, d3}},
		{"days by model and language, one model", userSpansQuery{
			usage: usageQuery{reseller: "r1", groupBy: []string{"model", "language"}, models: []string{"general"}},
			unit:  "day",
			spans: []userSpan{{d1, db.AddDate(0, 0, -1), 0, 7}, {d2, db, 7, 8}},
		}, `SELECT period, model, language, uniqExact(user_id) AS distinct_users
FROM (
    SELECT model, language, user_id,
        arrayJoin(arrayFilter(p -> p != 0, [
            if(toUInt32(finalizeAggregation(first_at)) < boundary, before, 0) AS in_before,
            if(toUInt32(finalizeAggregation(last_at)) >= boundary, after, 0) AS in_after])) AS period
    FROM (
        SELECT model, language, user_id, first_at, last_at, toUInt32(intDiv(toUInt32(day) - ?, 86400) + 1) AS i,
            toUInt32(arrayElement(?, i)) AS boundary, toUInt32(arrayElement(?, i)) AS before,
            toUInt32(arrayElement(?, i)) AS after
        FROM org_user_days
        WHERE reseller_id = ?
          AND day >= ?
          AND day < ?
          AND model IN (SELECT arrayJoin(?))
    )
)
GROUP BY period, model, language
ORDER BY period, model, language`, []any{
			uint32(d1.Unix()), []uint32{uint32(db.AddDate(0, 0, -1).Unix()), uint32(db.Unix())},
			[]uint32{0, 7}, []uint32{7, 8}, "r1", d1, d3, []string{"general"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.q.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}

func TestUserSpansOf(t *testing.T) {
	at := func(s string) time.Time { return parseUTC(t, s) }
	type um struct {
		start, boundary string
		before, after   uint32
	}
	unix := func(s string) uint32 { return uint32(at(s).Unix()) }
	cases := []struct {
		name, tz, granularity, unit string
		from, to                    string
		want                        []um // nil: not ok
	}{
		{"east of UTC by month", "Asia/Kolkata", "month", "month", "2026-09-30 18:30", "2026-11-30 18:30", []um{
			{"2026-09-01 00:00", "2026-09-30 18:30", 0, 20261001},
			{"2026-10-01 00:00", "2026-10-31 18:30", 20261001, 20261101},
			{"2026-11-01 00:00", "2026-11-30 18:30", 20261101, 0},
		}},
		{"west of UTC over the range", "America/New_York", "", "month", "2026-10-01 04:00", "2026-12-01 05:00", []um{
			{"2026-10-01 00:00", "2026-10-01 04:00", 0, 1},
			{"2026-11-01 00:00", "2026-12-01 00:00", 1, 0},
			{"2026-12-01 00:00", "2026-12-01 05:00", 1, 0},
		}},
		{"UTC by month", "UTC", "month", "month", "2026-10-01 00:00", "2026-12-01 00:00", []um{
			{"2026-10-01 00:00", "2026-11-01 00:00", 20261001, 0},
			{"2026-11-01 00:00", "2026-12-01 00:00", 20261101, 0},
		}},
		{"east of UTC by day", "Asia/Kolkata", "day", "day", "2026-10-04 18:30", "2026-10-06 18:30", []um{
			{"2026-10-04 00:00", "2026-10-04 18:30", 0, unix("2026-10-04 18:30")},
			{"2026-10-05 00:00", "2026-10-05 18:30", unix("2026-10-04 18:30"), unix("2026-10-05 18:30")},
			{"2026-10-06 00:00", "2026-10-06 18:30", unix("2026-10-05 18:30"), 0},
		}},
		{"west of UTC by day over the end of DST", "America/New_York", "day", "day", "2026-10-31 04:00", "2026-11-02 05:00", []um{
			{"2026-10-31 00:00", "2026-10-31 04:00", 0, unix("2026-10-31 04:00")},
			{"2026-11-01 00:00", "2026-11-01 04:00", unix("2026-10-31 04:00"), unix("2026-11-01 04:00")},
			{"2026-11-02 00:00", "2026-11-02 05:00", unix("2026-11-01 04:00"), 0},
		}},
		{"45-minute offset by week", "Asia/Kathmandu", "week", "day", "2026-11-01 18:15", "2026-11-08 18:15", []um{
			{"2026-11-01 00:00", "2026-11-01 18:15", 0, 20261102},
			{"2026-11-02 00:00", "2026-11-03 00:00", 20261102, 0},
			{"2026-11-03 00:00", "2026-11-04 00:00", 20261102, 0},
			{"2026-11-04 00:00", "2026-11-05 00:00", 20261102, 0},
			{"2026-11-05 00:00", "2026-11-06 00:00", 20261102, 0},
			{"2026-11-06 00:00", "2026-11-07 00:00", 20261102, 0},
			{"2026-11-07 00:00", "2026-11-08 00:00", 20261102, 0},
			{"2026-11-08 00:00", "2026-11-08 18:15", 20261102, 0},
		}},
		{"UTC by day", "UTC", "day", "day", "2026-11-01 00:00", "2026-11-03 00:00", []um{
			{"2026-11-01 00:00", "2026-11-02 00:00", unix("2026-11-01 00:00"), 0},
			{"2026-11-02 00:00", "2026-11-03 00:00", unix("2026-11-02 00:00"), 0},
		}},
		{"range inside a month over days", "Pacific/Chatham", "", "day", "2026-11-01 10:15", "2026-11-02 10:15", []um{
			{"2026-11-01 00:00", "2026-11-01 10:15", 0, 1},
			{"2026-11-02 00:00", "2026-11-02 10:15", 1, 0},
		}},
		{"range inside a month over months", "Pacific/Chatham", "", "month", "2026-11-01 10:15", "2026-11-02 10:15", nil},
		{"hours in a day", "UTC", "hour", "day", "2026-11-01 00:00", "2026-11-02 00:00", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := loadZone(tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			spans, ok := userSpansOf(at(tc.from), at(tc.to), tc.granularity, tc.unit, loc)
			if ok != (tc.want != nil) {
				t.Fatalf("ok = %v", ok)
			}
			var got []um
			for _, m := range spans {
				got = append(got, um{m.start.Format("2006-01-02 15:04"), m.boundary.UTC().Format("2006-01-02 15:04"), m.before, m.after})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// checkBuilt compares a builder's SQL and arguments with the wanted ones.
func checkBuilt(t *testing.T, sql string, args []any, wantSQL string, wantArgs []any) {
	t.Helper()
	if sql != wantSQL {
		t.Errorf("sql:\n%s\nwant:\n%s", sql, wantSQL)
	}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("args %v, want %v", args, wantArgs)
	}
}

// parseUTC parses "2006-01-02 15:04" in UTC.
func parseUTC(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSlotRunsOf(t *testing.T) {
	ny, err := loadZone("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, ny) }
	kath, err := loadZone("Asia/Kathmandu")
	if err != nil {
		t.Fatal(err)
	}
	slot := func(t time.Time) uint32 { return uint32(t.Unix() / 900) }
	tests := []struct {
		name   string
		bounds []time.Time
		want   []slotRun
		ok     bool
	}{
		{"New York days across the DST change: 24, 25 and 24 hours", []time.Time{day(1), day(2), day(3), day(4)},
			[]slotRun{{slot(day(1)), 100, 1}, {slot(day(2)), 96, 2}}, true},
		{"Kathmandu days (+5:45) are whole slots",
			[]time.Time{time.Date(2026, 11, 1, 0, 0, 0, 0, kath), time.Date(2026, 11, 2, 0, 0, 0, 0, kath), time.Date(2026, 11, 3, 0, 0, 0, 0, kath)},
			[]slotRun{{slot(time.Date(2026, 11, 1, 0, 0, 0, 0, kath)), 96, 2}}, true},
		{"a bound off the slots", []time.Time{day(1), day(2).Add(time.Minute)}, nil, false},
		{"a single bound", []time.Time{day(1)}, nil, false},
		{"bounds out of order", []time.Time{day(2), day(1)}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := slotRunsOf(tc.bounds)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("slotRunsOf = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	var many []time.Time
	for d := range maxSlotPeriods + 2 {
		many = append(many, time.Date(2026, 1, 1+d, 0, 0, 0, 0, time.UTC))
	}
	if _, ok := slotRunsOf(many); ok {
		t.Errorf("%d periods: want false (at most %d)", len(many)-1, maxSlotPeriods)
	}
	if _, ok := slotRunsOf(many[:maxSlotPeriods+1]); !ok {
		t.Errorf("%d periods: want true", maxSlotPeriods)
	}
}

func TestSlotMonthsOf(t *testing.T) {
	at := func(s string) time.Time { return parseUTC(t, s) }
	month := func(s string) time.Time { return at(s + "-01 00:00") }
	// days lists the starts of n days from start, then the end.
	days := func(start string, n int) []time.Time {
		var b []time.Time
		for d := range n + 1 {
			b = append(b, at(start).AddDate(0, 0, d))
		}
		return b
	}
	tests := []struct {
		name   string
		bounds []time.Time
		months [2]time.Time
		edges  []slotEdge
	}{
		{"a UTC month", days("2026-10-01 00:00", 31), [2]time.Time{month("2026-10"), month("2026-11")}, nil},
		{"Kolkata's October starts 5h30m before the UTC month", days("2026-09-30 18:30", 31), [2]time.Time{month("2026-10"), month("2026-11")},
			[]slotEdge{{day: at("2026-09-30 00:00"), bound: at("2026-09-30 18:30"), period: 1}}},
		{"Chatham's October (+13:45) too", days("2026-09-30 10:15", 31), [2]time.Time{month("2026-10"), month("2026-11")},
			[]slotEdge{{day: at("2026-09-30 00:00"), bound: at("2026-09-30 10:15"), period: 1}}},
		{"New York's October ends 4h into the next UTC month", days("2026-10-01 04:00", 31), [2]time.Time{month("2026-10"), month("2026-11")},
			[]slotEdge{{day: at("2026-11-01 00:00"), bound: at("2026-11-01 04:00"), end: true, period: 31}}},
		{"two weeks inside a UTC month", days("2026-11-04 05:00", 14), [2]time.Time{month("2026-11"), month("2026-12")}, nil},
		{"a start more than a day before the UTC month", days("2026-09-28 18:30", 14), [2]time.Time{month("2026-09"), month("2026-11")}, nil},
		{"a first period ending before the UTC month", append([]time.Time{at("2026-09-30 20:00")}, days("2026-09-30 22:00", 7)...),
			[2]time.Time{month("2026-09"), month("2026-11")}, nil},
		{"a last period starting after the UTC month", append(days("2026-10-25 02:00", 7), at("2026-11-01 04:00")),
			[2]time.Time{month("2026-10"), month("2026-12")}, nil},
		{"one period across two UTC months, both ends edges", []time.Time{at("2026-09-30 20:00"), at("2026-10-01 03:00")},
			[2]time.Time{month("2026-10"), month("2026-10")}, []slotEdge{
				{day: at("2026-09-30 00:00"), bound: at("2026-09-30 20:00"), period: 1},
				{day: at("2026-10-01 00:00"), bound: at("2026-10-01 03:00"), end: true, period: 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			months, edges := slotMonthsOf(tc.bounds)
			if months != tc.months || !reflect.DeepEqual(edges, tc.edges) {
				t.Errorf("slotMonthsOf = %v, %+v; want %v, %+v", months, edges, tc.months, tc.edges)
			}
		})
	}
}

func TestUserSlotsQueryBuild(t *testing.T) {
	d1, d2 := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	nov, dec := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s1 := uint32(d1.Unix() / 900)
	e1 := uint32(time.Date(2026, 10, 31, 18, 30, 0, 0, time.UTC).Unix() / 900) // Kolkata's November 1
	tests := []struct {
		name     string
		q        userSlotsQuery
		wantSQL  string
		wantArgs []any
	}{
		{"two days of the reseller with the total", userSlotsQuery{
			usage:  usageQuery{reseller: "r1", orgs: []string{"o1"}},
			runs:   []slotRun{{s1, 96, 2}},
			keys:   []uint32{uint32(d1.Unix()), uint32(d2.Unix())},
			total:  true,
			months: [2]time.Time{nov, dec},
		}, `SELECT transform(p, ?, ?, toUInt32(1)) AS period, count() AS distinct_users
FROM (
    SELECT arrayJoin(arrayPushBack(bitmaskToArray(mask), toUInt64(0))) AS p
    FROM (
        SELECT user_id, bitAnd(groupBitOr(m), 18446744073709551614) AS mask
        FROM (
            SELECT user_id, arrayReduce('groupBitOr', arrayMap(s -> bitShiftLeft(toUInt64(1), toUInt8(multiIf(s < ?, 0, s < ?, ? + intDiv(s - ?, ?), 0))),
                finalizeAggregation(slots))) AS m
            FROM user_month_slots
            WHERE reseller_id = ?
              AND month >= ?
              AND month < ?
              AND org_id IN (SELECT arrayJoin(?))
        )
        GROUP BY user_id
        HAVING mask != 0
    )
)
GROUP BY period
ORDER BY period`, []any{
			[]uint64{2, 4}, []uint32{uint32(d1.Unix()), uint32(d2.Unix())},
			s1, s1 + 192, uint32(1), s1, uint32(96), "r1", nov, dec, []string{"o1"},
		}},
		{"three weeks by organization on a plan, a 25-hour day between runs", userSlotsQuery{
			usage:  usageQuery{reseller: "r1", groupBy: []string{"organization"}, plans: []string{"pro"}},
			runs:   []slotRun{{s1, 672, 1}, {s1 + 672, 676, 1}, {s1 + 1348, 672, 1}},
			keys:   []uint32{20261104, 20261111, 20261118},
			months: [2]time.Time{nov, dec},
		}, `SELECT transform(p, ?, ?, toUInt32(1)) AS period, org_id, count() AS distinct_users
FROM (
    SELECT org_id, arrayJoin(bitmaskToArray(mask)) AS p
    FROM (
        SELECT org_id, user_id, bitAnd(groupBitOr(m), 18446744073709551614) AS mask
        FROM (
            SELECT org_id, user_id, arrayReduce('groupBitOr', arrayMap(s -> bitShiftLeft(toUInt64(1), toUInt8(multiIf(s < ?, 0, s < ?, ? + intDiv(s - ?, ?), s < ?, ? + intDiv(s - ?, ?), s < ?, ? + intDiv(s - ?, ?), 0))),
                finalizeAggregation(slots))) AS m
            FROM user_month_slots
            WHERE reseller_id = ?
              AND month >= ?
              AND month < ?
              AND org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))
        )
        GROUP BY org_id, user_id
        HAVING mask != 0
    )
)
GROUP BY period, org_id
ORDER BY period, org_id`, []any{
			[]uint64{2, 4, 8}, []uint32{20261104, 20261111, 20261118},
			s1, s1 + 672, uint32(1), s1, uint32(672), s1 + 1348, uint32(2), s1 + 672, uint32(676), s1 + 2020, uint32(3), s1 + 1348, uint32(672),
			"r1", nov, dec, "r1", []string{"pro"},
		}},
		{"two days by model in one language, each in its own UTC month's edge", userSlotsQuery{
			usage:  usageQuery{reseller: "r1", groupBy: []string{"model"}, languages: []string{"en"}},
			runs:   []slotRun{{e1, 96, 2}},
			keys:   []uint32{uint32(e1 * 900), uint32(e1*900 + 86400)},
			total:  true,
			months: [2]time.Time{nov, nov},
			edges: []slotEdge{
				{day: time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), bound: time.Unix(int64(e1)*900, 0).UTC(), period: 1},
				{day: nov, bound: time.Unix(int64(e1+192)*900, 0).UTC(), end: true, period: 2},
			},
		}, `SELECT transform(p, ?, ?, toUInt32(1)) AS period, model, count() AS distinct_users
FROM (
    SELECT model, arrayJoin(arrayPushBack(bitmaskToArray(mask), toUInt64(0))) AS p
    FROM (
        SELECT model, user_id, bitAnd(groupBitOr(m), 18446744073709551614) AS mask
        FROM (
            SELECT model, user_id, arrayReduce('groupBitOr', arrayMap(s -> bitShiftLeft(toUInt64(1), toUInt8(multiIf(s < ?, 0, s < ?, ? + intDiv(s - ?, ?), 0))),
                finalizeAggregation(slots))) AS m
            FROM user_month_slots
            WHERE reseller_id = ?
              AND month >= ?
              AND month < ?
              AND language IN (SELECT arrayJoin(?))
            UNION ALL
            SELECT model, user_id, toUInt64(?) AS m
            FROM org_user_days
            WHERE reseller_id = ?
              AND day = ?
              AND finalizeAggregation(last_at) >= ?
              AND language IN (SELECT arrayJoin(?))
            UNION ALL
            SELECT model, user_id, toUInt64(?) AS m
            FROM org_user_days
            WHERE reseller_id = ?
              AND day = ?
              AND finalizeAggregation(first_at) < ?
              AND language IN (SELECT arrayJoin(?))
        )
        GROUP BY model, user_id
        HAVING mask != 0
    )
)
GROUP BY period, model
ORDER BY period, model`, []any{
			[]uint64{2, 4}, []uint32{uint32(e1 * 900), uint32(e1*900 + 86400)},
			e1, e1 + 192, uint32(1), e1, uint32(96),
			"r1", nov, nov, []string{"en"},
			uint64(2), "r1", time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), time.Unix(int64(e1)*900, 0).UTC(), []string{"en"},
			uint64(4), "r1", nov, time.Unix(int64(e1+192)*900, 0).UTC(), []string{"en"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.q.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}
