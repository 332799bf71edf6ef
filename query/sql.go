package query

import (
	"strings"
	"time"
)

// Queries with a fixed shape. Every value is bound ('?'); the first bound
// value of each is the reseller, the scope of the request.
const (
	orgCountsSQL = `SELECT count() AS total, countIf(created_at < ?) AS before
FROM organizations FINAL
WHERE reseller_id = ?`

	// subscriptionsAsOfSQL: active paid subscriptions and their MRR as
	// they were just before a cutoff, from the raw events, so the previous
	// period is exact too.
	subscriptionsAsOfSQL = `SELECT currency, count() AS active, sum(price) AS mrr_minor
FROM (
    SELECT org_id, argMax(status, time_ms) AS st, argMax(amount_minor, time_ms) AS price, argMax(currency, time_ms) AS currency
    FROM events
    WHERE reseller_id = ? AND type = 'subscription.changed' AND time < ?
    GROUP BY org_id
)
WHERE st = 'active' AND price > 0
GROUP BY currency
ORDER BY currency`

	usersAsOfSQL = `SELECT countIf(last = 'user.added') AS users
FROM (
    SELECT org_id, user_id, argMax(type, time_ms) AS last
    FROM events
    WHERE reseller_id = ? AND type IN ('user.added', 'user.removed') AND time < ?
    GROUP BY org_id, user_id
)`

	minutesSQL = `SELECT sumMerge(media_ms) AS media_ms
FROM usage_15m
WHERE reseller_id = ? AND bucket >= ? AND bucket < ?`

	orgNamesSQL = `SELECT org_id, name
FROM organizations FINAL
WHERE reseller_id = ? AND org_id IN (SELECT arrayJoin(?))
ORDER BY org_id`

	orgsSQL = `SELECT org_id, name, plan, status, created_at
FROM organizations FINAL
WHERE reseller_id = ?
ORDER BY org_id`

	orgSQL = `SELECT org_id, name, plan, status, created_at
FROM organizations FINAL
WHERE reseller_id = ? AND org_id = ?`

	subsSQL = `SELECT org_id, plan, status, quota_minutes, price_minor, currency, period_start, period_end
FROM subscriptions FINAL
WHERE reseller_id = ?
ORDER BY org_id`

	subSQL = `SELECT org_id, plan, status, quota_minutes, price_minor, currency, period_start, period_end
FROM subscriptions FINAL
WHERE reseller_id = ? AND org_id = ?`

	userCountsSQL = `SELECT org_id, countIf(active = 1) AS users
FROM org_users FINAL
WHERE reseller_id = ?
GROUP BY org_id
ORDER BY org_id`

	orgUsersSQL = `SELECT user_id, role, updated_at
FROM org_users FINAL
WHERE reseller_id = ? AND org_id = ? AND active = 1
ORDER BY user_id`

	orgMinutesSQL = `SELECT org_id, sumMerge(media_ms) AS media_ms
FROM usage_15m
WHERE reseller_id = ? AND bucket >= ? AND bucket < ?
GROUP BY org_id
ORDER BY org_id`
)

// sqlBuilder collects WHERE conditions and their bound values in order.
type sqlBuilder struct {
	conds []string
	args  []any
}

func (b *sqlBuilder) where(cond string, args ...any) {
	b.conds = append(b.conds, cond)
	b.args = append(b.args, args...)
}

// in adds "col IN (values)" when values is non-empty; col comes from code,
// never from a request.
func (b *sqlBuilder) in(col string, values []string) {
	if len(values) > 0 {
		b.where(col+" IN (SELECT arrayJoin(?))", values)
	}
}

func (b *sqlBuilder) clause() string { return strings.Join(b.conds, "\n  AND ") }

// activityQuery is the latest jobs of a reseller, newest first, after a
// keyset cursor on (created_at, org_id, job_id).
type activityQuery struct {
	reseller string
	orgs     []string
	statuses []string // stored statuses: created, processing, completed, failed
	models   []string
	after    *cursor
	limit    int
}

func (a activityQuery) build() (string, []any) {
	var b sqlBuilder
	b.where("reseller_id = ?", a.reseller)
	b.in("org_id", a.orgs)
	b.in("status", a.statuses)
	b.in("model", a.models)
	if c := a.after; c != nil {
		b.where("(created_at < ? OR (created_at = ? AND (org_id < ? OR (org_id = ? AND job_id < ?))))",
			c.CreatedAt, c.CreatedAt, c.OrgID, c.OrgID, c.JobID)
	}
	b.args = append(b.args, a.limit)
	return `SELECT org_id, job_id, user_id, model, language, status, created_at, media_ms, processing_ms, error_code
FROM jobs FINAL
WHERE ` + b.clause() + `
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`, b.args
}

// Group-by dimensions: request name to column. The only identifiers a
// request can put into SQL.
var dimensions = map[string]string{
	"organization": "org_id",
	"model":        "model",
	"language":     "language",
}

// Granularities: the period key of a 15-minute UTC bucket in a time zone
// (bound). hour and day give the Unix time of the local period start; week
// and month give its local date as YYYYMMDD.
var granularities = map[string]string{
	"hour":  "toUInt32(toStartOfHour(bucket, ?))",
	"day":   "toUInt32(toStartOfDay(bucket, ?))",
	"week":  "toYYYYMMDD(toMonday(bucket, ?))",
	"month": "toYYYYMMDD(toStartOfMonth(bucket, ?))",
}

// usageQuery aggregates usage_15m by period (optional) and dimensions.
type usageQuery struct {
	reseller    string
	from, to    time.Time
	granularity string // "" = no period column
	tz          string
	groupBy     []string // keys of dimensions
	orgs        []string
	models      []string
	languages   []string
	plans       []string
}

// usageColumns are the aggregate columns every usage query returns, in order.
const usageColumns = `sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    uniqExactMerge(users) AS distinct_users`

func (u usageQuery) build() (string, []any) {
	var (
		sel, group []string
		args       []any
	)
	if u.granularity != "" {
		sel = append(sel, granularities[u.granularity]+" AS period")
		group = append(group, "period")
		args = append(args, u.tz)
	}
	for _, d := range u.groupBy {
		sel = append(sel, dimensions[d])
		group = append(group, dimensions[d])
	}
	var b sqlBuilder
	b.where("reseller_id = ?", u.reseller)
	b.where("bucket >= ?", u.from)
	b.where("bucket < ?", u.to)
	b.in("org_id", u.orgs)
	b.in("model", u.models)
	b.in("language", u.languages)
	if len(u.plans) > 0 {
		b.where("org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))", u.reseller, u.plans)
	}
	args = append(args, b.args...)
	sql := "SELECT " + strings.Join(append(sel, usageColumns), ",\n    ") + "\nFROM usage_15m\nWHERE " + b.clause()
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ") + "\nORDER BY " + strings.Join(group, ", ")
	}
	return sql, args
}
