package query

import (
	"slices"
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
	// they were just before two cutoffs (w = 0, 1), from the history of
	// changes in one scan, so the previous period is exact too.
	// Args: cutoff0 (x3), cutoff1 (x3), reseller, cutoff0, cutoff1.
	subscriptionsAsOfSQL = `SELECT w, if(w = 0, c0, c1) AS currency, count() AS active, sum(if(w = 0, p0, p1)) AS mrr_minor
FROM (
    SELECT org_id,
        argMaxIf(status, time_ms, time < ?) AS st0, argMaxIf(amount_minor, time_ms, time < ?) AS p0, argMaxIf(currency, time_ms, time < ?) AS c0,
        argMaxIf(status, time_ms, time < ?) AS st1, argMaxIf(amount_minor, time_ms, time < ?) AS p1, argMaxIf(currency, time_ms, time < ?) AS c1
    FROM tenant_changes
    WHERE reseller_id = ? AND type = 'subscription.changed' AND time < greatest(?, ?)
    GROUP BY org_id
)
ARRAY JOIN [0, 1] AS w
WHERE if(w = 0, st0, st1) = 'active' AND if(w = 0, p0, p1) > 0
GROUP BY w, currency
ORDER BY w, currency`

	// minutesSQL: the reseller's transcribed media (ms) in the 15-minute
	// buckets that start in two ranges, the period and the one before it,
	// in one read. Args: from0, to0, from1, to1, reseller, from1, to0.
	minutesSQL = `SELECT sumMergeIf(media_ms, bucket >= ? AND bucket < ?) AS ms0, sumMergeIf(media_ms, bucket >= ? AND bucket < ?) AS ms1
FROM usage_reseller_15m
WHERE reseller_id = ? AND bucket >= ? AND bucket < ?`

	// usersAsOfSQL: the users of the reseller's organizations just before
	// two cutoffs. Args: cutoff0, cutoff1, reseller, cutoff0, cutoff1.
	usersAsOfSQL = `SELECT countIf(l0 = 'user.added') AS users0, countIf(l1 = 'user.added') AS users1
FROM (
    SELECT org_id, user_id, argMaxIf(type, time_ms, time < ?) AS l0, argMaxIf(type, time_ms, time < ?) AS l1
    FROM tenant_changes
    WHERE reseller_id = ? AND type IN ('user.added', 'user.removed') AND time < greatest(?, ?)
    GROUP BY org_id, user_id
)`

	orgNamesSQL = `SELECT org_id, name
FROM organizations FINAL
WHERE reseller_id = ? AND org_id IN (SELECT arrayJoin(?))
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

	quotasSQL = `SELECT org_id, quota_minutes
FROM subscriptions FINAL
WHERE reseller_id = ?`
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
// keyset cursor on (created_at, org_id, job_id). The latest state of each
// job is its row with the highest version (argMax ... GROUP BY, what FINAL
// keeps), so a status filter applies to that state. With organizations
// given it reads jobs_by_org (organization first in its key); since bounds
// created_at from below, so a scan reads only the recent part of the key.
type activityQuery struct {
	reseller string
	orgs     []string
	jobIDs   []string
	statuses []string // stored statuses: created, processing, completed, failed
	models   []string
	after    *cursor
	since    time.Time // zero: no lower bound
	limit    int
}

// terminalStatuses are the statuses of the highest version rank: a row
// with one of them is its job's latest state (a job completes or fails
// once), so filtering rows on them before grouping is exact.
var terminalStatuses = []string{"completed", "failed"}

func (a activityQuery) build() (string, []any) {
	var b sqlBuilder
	b.where("reseller_id = ?", a.reseller)
	b.in("org_id", a.orgs)
	b.in("job_id", a.jobIDs)
	b.in("model", a.models)
	terminal := len(a.statuses) > 0
	for _, s := range a.statuses {
		terminal = terminal && slices.Contains(terminalStatuses, s)
	}
	if terminal {
		b.in("status", a.statuses)
	}
	if !a.since.IsZero() {
		b.where("created_at >= ?", a.since)
	}
	if c := a.after; c != nil {
		b.where("(created_at < ? OR (created_at = ? AND (org_id < ? OR (org_id = ? AND job_id < ?))))",
			c.CreatedAt, c.CreatedAt, c.OrgID, c.OrgID, c.JobID)
	}
	table, having := "jobs", ""
	if len(a.orgs) > 0 {
		table = "jobs_by_org"
	}
	if len(a.statuses) > 0 {
		having = "\nHAVING has(?, a_status)"
		b.args = append(b.args, a.statuses)
	}
	b.args = append(b.args, a.limit)
	return `SELECT org_id, job_id, argMax(user_id, version) AS a_user, argMax(model, version) AS a_model,
    argMax(language, version) AS a_language, argMax(status, version) AS a_status, created_at,
    argMax(media_ms, version) AS a_media, argMax(processing_ms, version) AS a_processing, argMax(error_code, version) AS a_error
FROM ` + table + `
WHERE ` + b.clause() + `
GROUP BY org_id, job_id, created_at` + having + `
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`, b.args
}

// openJobsQuery: the jobs in progress (a job.created and no job.completed
// or job.failed yet) from jobs_open, newest first, after the cursor.
func (a activityQuery) openJobs() (string, []any) {
	var b sqlBuilder
	b.where("reseller_id = ?", a.reseller)
	b.in("org_id", a.orgs)
	b.in("model", a.models)
	if c := a.after; c != nil {
		b.where("(created_at < ? OR (created_at = ? AND (org_id < ? OR (org_id = ? AND job_id < ?))))",
			c.CreatedAt, c.CreatedAt, c.OrgID, c.OrgID, c.JobID)
	}
	b.args = append(b.args, a.limit)
	return `SELECT org_id, job_id, created_at
FROM jobs_open
WHERE ` + b.clause() + `
GROUP BY org_id, job_id, created_at
HAVING sum(open) > 0
ORDER BY created_at DESC, org_id DESC, job_id DESC
LIMIT ?`, b.args
}

// activityGuide counts, from the usage aggregates, the jobs that an
// activity page may show per UTC day of some organizations (and models),
// or per 15-minute bucket of the whole reseller, from since up to the last
// one that ends by upper, newest first: latestJobs starts its scan at the
// newest day or bucket by which the counts reach a page, instead of
// widening windows one query at a time. The counts are a guide only (a
// status counts when it was reached, not when the job was created); the
// scan checks that it filled the page. Models without organizations have
// no guide: only the organizations' tables hold them.
type activityGuide struct {
	reseller     string
	orgs, models []string
	statuses     []string // stored statuses, as activityQuery's
	since, upper time.Time
}

// guided tells whether latestJobs asks activityGuide first: with
// organizations, or with statuses alone. A page of every job of the
// reseller mostly fills within the first window, where the guide would
// only add a query.
func (a activityQuery) guided() bool {
	return len(a.orgs) > 0 || (len(a.models) == 0 && len(a.statuses) > 0)
}

// width is the time each of the guide's rows counts.
func (g activityGuide) width() time.Duration {
	if len(g.orgs) == 0 {
		return 15 * time.Minute
	}
	return 24 * time.Hour
}

func (g activityGuide) build() (string, []any) {
	table, col := "usage_org_1d", "day"
	switch {
	case len(g.orgs) == 0:
		table, col = "usage_reseller_15m", "bucket"
	case len(g.models) > 0:
		table = "usage_1d"
	}
	var b sqlBuilder
	b.where("reseller_id = ?", g.reseller)
	b.in("org_id", g.orgs)
	b.in("model", g.models)
	b.where(col+" >= ?", g.since)
	b.where(col+" <= ?", g.upper.Add(-g.width()))
	count := "sumMerge(jobs_created)"
	var terminal []string
	for _, s := range g.statuses {
		if !slices.Contains(terminalStatuses, s) {
			terminal = nil
			break
		}
		if c := "sumMerge(jobs_" + s + ")"; !slices.Contains(terminal, c) {
			terminal = append(terminal, c)
		}
	}
	if len(terminal) > 0 {
		count = strings.Join(terminal, " + ")
	}
	return `SELECT ` + col + `, ` + count + ` AS jobs
FROM ` + table + `
WHERE ` + b.clause() + `
GROUP BY ` + col + `
ORDER BY ` + col + ` DESC`, b.args
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
	// users asks for exact distinct users (the costly aggregate); without
	// it distinct_users is 0.
	users bool
	// months and days are ranges of whole UTC months and days in [from,
	// to) to read from usage_1mo and usage_1d (see wholeSpans); the rest of
	// the range comes from usage_15m.
	months, days [][2]time.Time
	// minus are ranges of buckets outside [from, to), inside the last of
	// months, whose sums are taken off that month's (see tailMonth). Sums
	// without periods only: no granularity, no distinct users.
	minus [][2]time.Time
	// shift, for month periods in a zone whose months are not UTC months,
	// reads usage_1mo anyway (see monthShift). Sums only: no distinct users.
	shift *monthShift
	// totals adds WITH TOTALS (needs a granularity): the totals row merges
	// the periods' states, cheaper than a second scan for distinct users.
	totals bool
	// level, when set, overrides the tables the query's dimensions and
	// filters would pick (see usageQuery.tables); tests compare levels.
	level usageLevel
}

// usageLevel is how fine the keys of the usage tables read are.
type usageLevel int

const (
	levelAuto          usageLevel = iota // the coarsest that answers the query
	levelModel                           // usage_15m, usage_1d, usage_1mo: organization, model, language
	levelOrg                             // usage_org_1d, usage_org_1mo: organization
	levelReseller                        // usage_reseller_15m: the reseller only
	levelResellerModel                   // usage_reseller_model_15m: the reseller by model and language
)

// hasModel is whether the level's tables have model and language.
func (l usageLevel) hasModel() bool { return l == levelModel || l == levelResellerModel }

// fineOnly is whether the level reads its 15-minute table alone, for any
// range.
func (l usageLevel) fineOnly() bool { return l == levelReseller || l == levelResellerModel }

// usageTables names the tables of one level: short ranges come from
// fine, the 15-minute buckets of partial days from byTime, whole UTC days
// and months from day and month, the buckets that a monthShift moves from
// edges; cols is what a union part selects.
type usageTables struct {
	fine, byTime, day, month, edges string
	cols                            string
}

var levelTables = map[usageLevel]usageTables{
	levelModel: {"usage_15m", "usage_15m_by_time", "usage_1d", "usage_1mo", "usage_month_edges",
		"reseller_id, org_id, %s, model, language, jobs_completed, jobs_failed, media_ms, processing_ms, users"},
	levelOrg: {"usage_15m", "usage_15m_by_time", "usage_org_1d", "usage_org_1mo", "usage_month_edges",
		"reseller_id, org_id, %s, jobs_completed, jobs_failed, media_ms, processing_ms, users"},
	// Every range of the reseller's buckets is small: no coarser tables.
	levelReseller: {fine: "usage_reseller_15m"},
	// Chosen for ranges without a whole UTC month only (see tables).
	levelResellerModel: {fine: "usage_reseller_model_15m"},
}

// tables picks the level: without model or language in the group-by or
// filters the organization tables do, with them but without organizations
// the reseller's model buckets, and without any group-by or filter the
// reseller's own buckets (a few thousand rows a month, in any zone) —
// unless distinct users are asked over whole UTC days or months: the
// organizations' day and month states hold fewer user ids to merge than
// the reseller's 15-minute ones (measured 90–130 against 165 ms for a
// month of the largest benchmark reseller).
func (u usageQuery) tables() usageLevel {
	if u.level != levelAuto {
		return u.level
	}
	byModel := len(u.models)+len(u.languages) > 0
	for _, d := range u.groupBy {
		byModel = byModel || d != "organization"
	}
	// By model or language for the whole reseller: the reseller's model
	// buckets, unless distinct users are asked over whole UTC days or
	// months (as above) or the range holds a whole UTC month (usage_1mo
	// has fewer rows for months).
	if byModel && !slices.Contains(u.groupBy, "organization") && len(u.orgs)+len(u.plans)+len(u.months) == 0 &&
		!(u.users && len(u.days) > 0) {
		return levelResellerModel
	}
	if len(u.models)+len(u.languages) > 0 {
		return levelModel
	}
	for _, d := range u.groupBy {
		if d != "organization" {
			return levelModel
		}
	}
	if len(u.groupBy)+len(u.orgs)+len(u.plans) == 0 && !(u.users && len(u.days)+len(u.months) > 0) {
		return levelReseller
	}
	return levelOrg
}

// monthShift: each UTC month row of usage_1mo in [from, to) counts in the
// period holding the month's 16th; the buckets of the zones (from each
// local month start to the UTC month start next to it) are moved to their
// own period: subtracted from their UTC month's period (when that month is
// read) and added to theirs (when within the query's range). Every other
// bucket of those months lies in its month's period already.
type monthShift struct {
	from, to time.Time // the UTC months read from usage_1mo
	zones    [][2]time.Time
}

// usageColumns are the aggregate columns every usage query returns, in
// order; the last one is distinct_users.
const usageColumns = `sumMerge(media_ms) AS media_ms,
    sumMerge(jobs_completed) AS jobs_completed,
    sumMerge(jobs_failed) AS jobs_failed,
    sumMerge(processing_ms) AS processing_ms,
    `

// signedUsageColumns are usageColumns over union parts with a sign: the
// parts with sign -1 are taken off.
const signedUsageColumns = `toUInt64(sumMergeIf(media_ms, sign > 0) - sumMergeIf(media_ms, sign < 0)) AS media_ms,
    toUInt64(sumMergeIf(jobs_completed, sign > 0) - sumMergeIf(jobs_completed, sign < 0)) AS jobs_completed,
    toUInt64(sumMergeIf(jobs_failed, sign > 0) - sumMergeIf(jobs_failed, sign < 0)) AS jobs_failed,
    toUInt64(sumMergeIf(processing_ms, sign > 0) - sumMergeIf(processing_ms, sign < 0)) AS processing_ms,
    `

// signedHaving keeps the groups of signed union parts that have rows left
// after taking off: a group whose buckets were all taken off (outside the
// range, or moved to another period) reads as zeros, and every usage row
// counts at least one job event. (The counts of finished jobs are the
// output columns of signedUsageColumns.)
const signedHaving = "\nHAVING jobs_completed + jobs_failed + toUInt64(sumMergeIf(jobs_created, sign > 0) - sumMergeIf(jobs_created, sign < 0)) > 0"

const (
	usersColumn   = "uniqExactMerge(users) AS distinct_users"
	noUsersColumn = "toUInt64(0) AS distinct_users"
)

// uncovered is [from, to) without the (sorted, disjoint) ranges of a and b.
func uncovered(from, to time.Time, a, b [][2]time.Time) [][2]time.Time {
	all := append(append([][2]time.Time{}, a...), b...)
	slices.SortFunc(all, func(x, y [2]time.Time) int { return x[0].Compare(y[0]) })
	var out [][2]time.Time
	at := from
	for _, r := range all {
		if r[0].After(at) {
			out = append(out, [2]time.Time{at, r[0]})
		}
		if r[1].After(at) {
			at = r[1]
		}
	}
	if at.Before(to) {
		out = append(out, [2]time.Time{at, to})
	}
	return out
}

// filters is the WHERE of one usage table: the reseller, the given
// conditions (a condition string followed by its values, in turn), and the
// request's filters.
func (u usageQuery) filters(conds ...any) sqlBuilder {
	var b sqlBuilder
	b.where("reseller_id = ?", u.reseller)
	for i := 0; i < len(conds); {
		cond := conds[i].(string)
		n := strings.Count(cond, "?")
		b.where(cond, conds[i+1:i+1+n]...)
		i += 1 + n
	}
	b.in("org_id", u.orgs)
	b.in("model", u.models)
	b.in("language", u.languages)
	if len(u.plans) > 0 {
		b.where("org_id IN (SELECT org_id FROM organizations FINAL WHERE reseller_id = ? AND plan IN (SELECT arrayJoin(?)))", u.reseller, u.plans)
	}
	return b
}

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
	users := noUsersColumn
	if u.users {
		users = usersColumn
	}
	having := ""
	level := u.tables()
	if u.shift != nil && !level.fineOnly() {
		return u.buildShifted(sel, group, levelTables[level])
	}
	head := "SELECT " + strings.Join(append(sel, usageColumns+users), ",\n    ")
	var sql string
	switch {
	case level.fineOnly() || len(u.days)+len(u.months) == 0:
		b := u.filters("bucket >= ?", u.from, "bucket < ?", u.to)
		args = append(args, b.args...)
		sql = head + "\nFROM " + levelTables[level].fine + "\nWHERE " + b.clause()
	default:
		t := levelTables[level]
		// Whole months from usage_1mo, whole days from usage_1d, the
		// buckets of the other days from usage_15m: each bucket counted once.
		cover := func(col string, rs [][2]time.Time) (string, []any) {
			var conds []string
			var args []any
			for _, r := range rs {
				conds = append(conds, "("+col+" >= ? AND "+col+" < ?)")
				args = append(args, r[0], r[1])
			}
			return "(" + strings.Join(conds, " OR ") + ")", args
		}
		var parts []string
		// part reads the ranges of col from table; with minus, each row
		// carries its job events and sign.
		part := func(table, col string, ranges [][2]time.Time, sign string) {
			if len(ranges) == 0 {
				return
			}
			cond, cargs := cover(col, ranges)
			b := u.filters(append([]any{cond}, cargs...)...)
			args = append(args, b.args...)
			if col != "bucket" {
				col += " AS bucket"
			}
			cols := strings.Replace(t.cols, "%s", col, 1)
			if len(u.minus) > 0 {
				cols += ", jobs_created, toInt8(" + sign + ") AS sign"
			}
			parts = append(parts, "SELECT "+cols+"\n    FROM "+table+"\n    WHERE "+strings.ReplaceAll(b.clause(), "\n", "\n    "))
		}
		part(t.month, "month", u.months, "1")
		part(t.day, "day", u.days, "1")
		// The rest as ranges of buckets from the table ordered by time,
		// so that only those buckets are read.
		part(t.byTime, "bucket", uncovered(u.from, u.to, u.months, u.days), "1")
		part(t.byTime, "bucket", u.minus, "-1")
		if len(u.minus) > 0 {
			head = "SELECT " + strings.Join(append(sel, signedUsageColumns+noUsersColumn), ",\n    ")
			having = signedHaving
		}
		sql = head + "\nFROM (\n    " + strings.Join(parts, "\n    UNION ALL\n    ") + "\n)"
	}
	if len(group) > 0 {
		sql += "\nGROUP BY " + strings.Join(group, ", ")
		if u.totals {
			sql += " WITH TOTALS"
		}
		sql += having + "\nORDER BY " + strings.Join(group, ", ")
	}
	return sql, args
}

func (u usageQuery) buildShifted(sel, group []string, t usageTables) (string, []any) {
	var zones []string
	var zargs []any
	for _, z := range u.shift.zones {
		zones = append(zones, "(bucket >= ? AND bucket < ?)")
		zargs = append(zargs, z[0], z[1])
	}
	inZones := "(" + strings.Join(zones, " OR ") + ")"
	if len(zones) == 0 { // months that are the zone's months
		inZones = "0"
	}
	// The parts carry the sum states and a sign, merged once in the outer
	// GROUP BY (finalizing every row and summing sign * value cost a fifth
	// more: 13 months by organization in Europe/Amsterdam, second largest
	// benchmark reseller, 69–97 against 58–75 ms of ClickHouse CPU).
	const vals = "media_ms, jobs_completed, jobs_failed, processing_ms, jobs_created"
	dims := ""
	for _, d := range u.groupBy {
		dims += dimensions[d] + ", "
	}
	const utcMonth = "toStartOfDay(bucket, 'UTC') - (toDayOfMonth(bucket, 'UTC') - 1) * 86400"
	key := granularities[u.granularity]
	var args []any
	part := func(period, sign, table string, b sqlBuilder) string {
		args = append(args, u.tz)
		args = append(args, b.args...)
		return "SELECT " + strings.Replace(key, "bucket", period, 1) + " AS period, " + dims + sign + " AS sign,\n        " + vals +
			"\n    FROM " + table + "\n    WHERE " + strings.ReplaceAll(b.clause(), "\n", "\n    ")
	}
	months := part("month + 15 * 86400", "toInt8(1)", t.month, u.filters("month >= ?", u.shift.from, "month < ?", u.shift.to))
	// The zones' buckets, read once: each is added to its own period (when
	// within the query's range) and subtracted from its UTC month's (when
	// that month is read).
	b := u.filters(append([]any{inZones}, zargs...)...)
	zoneTable := t.edges
	if !nearMonthStarts(u.shift.zones) {
		zoneTable = t.byTime
	}
	args = append(args, u.tz, u.from, u.to, u.tz, u.shift.from, u.shift.to)
	args = append(args, b.args...)
	zoned := "SELECT tupleElement(ps, 1) AS period, " + dims + "tupleElement(ps, 2) AS sign,\n        " + vals + `
    FROM (
        SELECT ` + dims + vals + `, arrayJoin([
            tuple(` + key + `, if(bucket >= ? AND bucket < ?, toInt8(1), toInt8(0))),
            tuple(` + strings.Replace(key, "bucket", utcMonth+" + 15 * 86400", 1) + `, if(bucket >= ? AND bucket < ?, toInt8(-1), toInt8(0)))]) AS ps
        FROM ` + zoneTable + `
        WHERE ` + strings.ReplaceAll(b.clause(), "\n", "\n        ") + `
    )
    WHERE tupleElement(ps, 2) != 0`
	out := append([]string{"period"}, sel[1:]...)
	out = append(out, signedUsageColumns+noUsersColumn)
	sql := "SELECT " + strings.Join(out, ",\n    ") + "\nFROM (\n    " + months + "\n    UNION ALL\n    " + zoned +
		"\n)\nGROUP BY " + strings.Join(group, ", ") + signedHaving + "\nORDER BY " + strings.Join(group, ", ")
	return sql, args
}

// edgeHours is how far from a UTC month start usage_month_edges holds
// buckets (on both sides).
const edgeHours = 14

// nearMonthStarts is whether every range lies within edgeHours of one UTC
// month start, so that usage_month_edges holds its buckets. Zone offsets
// run from UTC-12 to UTC+14, so a monthShift's always do.
func nearMonthStarts(ranges [][2]time.Time) bool {
	const edge = edgeHours * time.Hour
	for _, r := range ranges {
		mid := r[0].UTC().Add(r[1].Sub(r[0]) / 2).Add(edge) // within the month that starts nearest
		start := time.Date(mid.Year(), mid.Month(), 1, 0, 0, 0, 0, time.UTC)
		if r[0].Before(start.Add(-edge)) || r[1].After(start.Add(edge)) {
			return false
		}
	}
	return true
}

// and adds a condition.
func (b sqlBuilder) and(cond string, args ...any) sqlBuilder {
	b.where(cond, args...)
	return b
}

// orgsQuery lists a reseller's organizations that pass the filters (with
// usage, the current month's usage of each, grouped by organization). The
// handler joins their users, quotas and usage and sorts and pages them in
// Go: ClickHouse 18.16 plans a chain of nested JOINs at a cost that
// dwarfed the work (65 against 24 ms of CPU for the four flat queries, for
// the largest benchmark reseller).
type orgsQuery struct {
	reseller string
	needle   string // lower case; "" = no search
	plans    []string
	statuses []string
	usage    usageQuery
}

// filtered is the reseller's organizations (latest state) that pass the
// filters, each with its sort key for names (lowerUTF8, compared byte by
// byte as ClickHouse would). FINAL applies inside, the filters outside: a
// filter inside would see replaced versions of a row.
func (o orgsQuery) filtered() (string, []any) {
	var b sqlBuilder
	b.where("1")
	if o.needle != "" {
		b.where("position(lowerUTF8(name), ?) > 0", o.needle)
	}
	b.in("plan", o.plans)
	b.in("status", o.statuses)
	return `SELECT org_id, name, plan, status, created_at, lowerUTF8(name) AS name_key
FROM (SELECT org_id, name, plan, status, created_at FROM organizations FINAL WHERE reseller_id = ?)
WHERE ` + b.clause(), append([]any{o.reseller}, b.args...)
}

// userSpansQuery counts distinct users per period, or over the whole
// range, per group (organization, model, language) or for the reseller,
// from org_user_months or org_user_days (unit "month" or "day"; only
// org_user_days has model and language, so only it serves a group-by or
// filter on them). The range's bounds and the
// periods' are local period starts; each UTC month or day read holds at
// most one of them (see userSpansOf), so a user of the span counts in the
// period before it when first seen before it, and in the period after it
// when last seen at or after it.
type userSpansQuery struct {
	usage usageQuery // reseller, organization group-by, filters
	unit  string
	spans []userSpan
	// total adds the distinct users of the whole range as period 1 (from
	// the same rows: the range is the union of the periods). It costs about
	// what a second query over the range would, minus that query's fixed
	// cost; without it, spans that each lie in one period are counted in
	// a simpler query (see whole).
	total bool
}

// userSpan is one UTC month or day of a userSpansQuery: the boundary inside
// it (its end when none) and the period keys of its parts before and after
// the boundary (0: outside the range).
type userSpan struct {
	start, boundary time.Time
	before, after   uint32
}

// userSpanTables names the table of each unit of userSpansQuery; the
// column of the span's start is named as the unit.
var userSpanTables = map[string]string{"month": "org_user_months", "day": "org_user_days"}

func (q userSpansQuery) build() (string, []any) {
	var starts, bounds, before, after []uint32
	for _, m := range q.spans {
		starts = append(starts, uint32(m.start.Unix()))
		bounds = append(bounds, uint32(m.boundary.Unix()))
		before = append(before, m.before)
		after = append(after, m.after)
	}
	group, dims := "period", ""
	for _, d := range q.usage.groupBy {
		group += ", " + dimensions[d]
		dims += dimensions[d] + ", "
	}
	var from, to time.Time
	if n := len(q.spans); n > 0 {
		from, to = q.spans[0].start, spanEnd(q.spans[n-1].start, q.unit)
	}
	// Days are consecutive: their index is arithmetic, not a search of up
	// to a year of days per row.
	col, index := q.unit, "indexOf(?, toUInt32("+q.unit+"))"
	var first any = starts
	if q.unit == "day" {
		index = "toUInt32(intDiv(toUInt32(day) - ?, 86400) + 1)"
		first = uint32(from.Unix())
	}
	b := q.usage.filters(col+" >= ?", from, col+" < ?", to)
	if q.whole() && !q.total {
		// Each row in its span's period: no first/last to compare (measured
		// 170 → 100 ms for 13 months by organization of the largest
		// benchmark reseller, 89 → 31 over the range).
		return `SELECT ` + group + `, uniqExact(user_id) AS distinct_users
FROM (
    SELECT ` + dims + `user_id, toUInt32(arrayElement(?, ` + index + `)) AS period
    FROM ` + userSpanTables[q.unit] + `
    WHERE ` + strings.ReplaceAll(b.clause(), "\n", "\n    ") + `
)
GROUP BY ` + group + `
ORDER BY ` + group, append([]any{before, first}, b.args...)
	}
	total := ""
	if q.total {
		total = ",\n            toUInt32(in_before + in_after != 0)"
	}
	args := append([]any{first, bounds, before, after}, b.args...)
	return `SELECT ` + group + `, uniqExact(user_id) AS distinct_users
FROM (
    SELECT ` + dims + `user_id,
        arrayJoin(arrayFilter(p -> p != 0, [
            if(toUInt32(finalizeAggregation(first_at)) < boundary, before, 0) AS in_before,
            if(toUInt32(finalizeAggregation(last_at)) >= boundary, after, 0) AS in_after` + total + `])) AS period
    FROM (
        SELECT ` + dims + `user_id, first_at, last_at, ` + index + ` AS i,
            toUInt32(arrayElement(?, i)) AS boundary, toUInt32(arrayElement(?, i)) AS before,
            toUInt32(arrayElement(?, i)) AS after
        FROM ` + userSpanTables[q.unit] + `
        WHERE ` + strings.ReplaceAll(b.clause(), "\n", "\n        ") + `
    )
)
GROUP BY ` + group + `
ORDER BY ` + group, args
}

// whole is whether every span lies in one period (as in UTC): no boundary
// inside any of them.
func (q userSpansQuery) whole() bool {
	for _, m := range q.spans {
		if m.after != 0 || !m.boundary.Equal(spanEnd(m.start, q.unit)) {
			return false
		}
	}
	return true
}

// spanEnd is the end of the UTC month or day (unit) starting at start.
func spanEnd(start time.Time, unit string) time.Time {
	if unit == "day" {
		return start.AddDate(0, 0, 1)
	}
	return start.AddDate(0, 1, 0)
}

// userSlotsQuery counts distinct users per local period (up to
// maxSlotPeriods of them, days or weeks in any zone), and optionally over
// the whole range, from user_month_slots: every zone offset is a whole
// number of 15-minute slots, so each slot of a user lies in one period and
// the user counts once in every period one of their slots lies in. A month
// of a reseller is one row per user, model and language there, against
// one per user, model, language and day in org_user_days. Rows are
// (period key, the group's dimensions, distinct users), the whole range's
// as period 1, as userSpansQuery gives them.
type userSlotsQuery struct {
	usage  usageQuery // reseller, group-by and filters
	runs   []slotRun
	keys   []uint32 // each period's key, in order
	total  bool
	months [2]time.Time // the UTC months [from, to) read from user_month_slots
	edges  []slotEdge   // the ends of the range outside months
}

// slotEdge is a part of the range shorter than a day at one end of it,
// alone in its UTC month and inside one period: its users come from that
// UTC day's rows of org_user_days (each user's first and last job event)
// instead of the month's of user_month_slots, most of which lie outside
// the range (a local month in any zone but UTC touches two UTC months). A
// start edge [bound, end of day) has the users whose last event of the
// day is at or after bound, an end edge [day, bound) those whose first
// one is before it.
type slotEdge struct {
	day, bound time.Time
	end        bool
	period     int // 1-based index
}

// slotMonthsOf lists, for period bounds (each period's start, then the
// range's end), the UTC months of user_month_slots rows that a
// userSlotsQuery reads and the edges it reads from org_user_days instead.
func slotMonthsOf(bounds []time.Time) ([2]time.Time, []slotEdge) {
	first, last := bounds[0].UTC(), bounds[len(bounds)-1].UTC()
	from, lastMonth := startOfMonth(first, time.UTC), startOfMonth(last.Add(-time.Nanosecond), time.UTC)
	to := lastMonth.AddDate(0, 1, 0)
	var edges []slotEdge
	if next := from.AddDate(0, 1, 0); first.After(from) && next.Sub(first) < 24*time.Hour && !bounds[1].Before(next) {
		edges = append(edges, slotEdge{day: next.AddDate(0, 0, -1), bound: first, period: 1})
		from = next
	}
	if last.After(lastMonth) && last.Sub(lastMonth) < 24*time.Hour && !bounds[len(bounds)-2].After(lastMonth) && !lastMonth.Before(from) {
		edges = append(edges, slotEdge{day: lastMonth, bound: last, end: true, period: len(bounds) - 1})
		to = lastMonth
	}
	return [2]time.Time{from, to}, edges
}

// slotRun is n consecutive periods of the same length in 15-minute slots,
// the first starting at slot start (intDiv(unix time, 900)).
type slotRun struct{ start, length, n uint32 }

// maxSlotPeriods is how many periods a userSlotsQuery counts: each is a
// bit of a user's UInt64 mask, bit 0 marking slots outside the range.
const maxSlotPeriods = 63

// slotRunsOf turns period bounds (each period's start, then the range's
// end) into runs of equal-length periods. False when a bound is not on a
// 15-minute slot or there are too many periods.
func slotRunsOf(bounds []time.Time) ([]slotRun, bool) {
	if len(bounds) < 2 || len(bounds)-1 > maxSlotPeriods {
		return nil, false
	}
	var runs []slotRun
	for i := 0; i+1 < len(bounds); i++ {
		a, b := bounds[i].Unix(), bounds[i+1].Unix()
		if a%900 != 0 || b%900 != 0 || b <= a {
			return nil, false
		}
		start, length := uint32(a/900), uint32((b-a)/900)
		if n := len(runs); n > 0 && runs[n-1].length == length {
			runs[n-1].n++
			continue
		}
		runs = append(runs, slotRun{start, length, 1})
	}
	return runs, true
}

func (q userSlotsQuery) build() (string, []any) {
	group, dims := "period", ""
	for _, d := range q.usage.groupBy {
		group += ", " + dimensions[d]
		dims += dimensions[d] + ", "
	}
	// The slot's period index (1-based, 0 outside the range) as one
	// multiIf over the runs. The lambda holds only its argument and bound
	// values: ClickHouse 18.16 cannot capture columns in a lambda.
	var index strings.Builder
	var args []any
	index.WriteString("multiIf(s < ?, 0")
	args = append(args, q.runs[0].start)
	first := uint32(1)
	for _, r := range q.runs {
		index.WriteString(", s < ?, ? + intDiv(s - ?, ?)")
		args = append(args, r.start+r.length*r.n, first, r.start, r.length)
		first += r.n
	}
	index.WriteString(", 0)")
	bits := make([]uint64, len(q.keys))
	for i := range bits {
		bits[i] = 1 << (i + 1)
	}
	periods := "bitmaskToArray(mask)"
	if q.total {
		periods = "arrayPushBack(bitmaskToArray(mask), toUInt64(0))"
	}
	b := q.usage.filters("month >= ?", q.months[0], "month < ?", q.months[1])
	args = append([]any{bits, q.keys}, args...)
	args = append(args, b.args...)
	rows := `SELECT ` + dims + `user_id, arrayReduce('groupBitOr', arrayMap(s -> bitShiftLeft(toUInt64(1), toUInt8(` + index.String() + `)),
                finalizeAggregation(slots))) AS m
            FROM user_month_slots
            WHERE ` + strings.ReplaceAll(b.clause(), "\n", "\n            ")
	for _, e := range q.edges {
		cond := "finalizeAggregation(last_at) >= ?"
		if e.end {
			cond = "finalizeAggregation(first_at) < ?"
		}
		b := q.usage.filters("day = ?", e.day, cond, e.bound)
		rows += `
            UNION ALL
            SELECT ` + dims + `user_id, toUInt64(?) AS m
            FROM org_user_days
            WHERE ` + strings.ReplaceAll(b.clause(), "\n", "\n            ")
		args = append(append(args, uint64(1)<<e.period), b.args...)
	}
	return `SELECT transform(p, ?, ?, toUInt32(1)) AS period, ` + dims + `count() AS distinct_users
FROM (
    SELECT ` + dims + `arrayJoin(` + periods + `) AS p
    FROM (
        SELECT ` + dims + `user_id, bitAnd(groupBitOr(m), 18446744073709551614) AS mask
        FROM (
            ` + rows + `
        )
        GROUP BY ` + dims + `user_id
        HAVING mask != 0
    )
)
GROUP BY ` + group + `
ORDER BY ` + group, args
}
