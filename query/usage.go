package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"
)

// usageMetrics lists the metrics /v1/usage computes, in response order.
var usageMetrics = []string{"minutes", "jobs_completed", "jobs_failed", "failure_rate", "distinct_users", "avg_processing_ms"}

var defaultUsageMetrics = []string{"minutes", "jobs_completed", "jobs_failed"}

// defaultPeriods is how many periods /v1/usage shows without ?from.
var defaultPeriods = map[string]int{"hour": 24, "day": 30, "week": 12, "month": 12}

// maxPeriods bounds the series length (and the response size).
const maxPeriods = 1000

// usageParams is a parsed /v1/usage request.
type usageParams struct {
	metrics     []string
	groupBy     []string
	granularity string
	from, to    time.Time // period boundaries; to is exclusive
	top         int       // 0: every group
	orgs        []string
	models      []string
	languages   []string
	plans       []string
}

func (q *Query) parseUsage(c *fiber.Ctx, s scope) (usageParams, error) {
	p := usageParams{
		metrics: listParam(c, "metrics"), groupBy: listParam(c, "group_by"), granularity: c.Query("granularity", "day"),
		orgs: listParam(c, "org"), models: listParam(c, "model"), languages: listParam(c, "language"), plans: listParam(c, "plan"),
	}
	if len(p.metrics) == 0 {
		p.metrics = defaultUsageMetrics
	}
	for _, m := range p.metrics {
		if !slices.Contains(usageMetrics, m) {
			return p, badParam("metrics", "unknown metric %q: want any of %s", m, strings.Join(usageMetrics, ", "))
		}
	}
	if len(p.groupBy) > 2 {
		return p, badParam("group_by", "at most two of organization, model, language")
	}
	for i, g := range p.groupBy {
		if _, ok := dimensions[g]; !ok {
			return p, badParam("group_by", "unknown group_by %q: want organization, model or language", g)
		}
		if slices.Contains(p.groupBy[:i], g) {
			return p, badParam("group_by", "group_by %q given twice", g)
		}
	}
	if _, ok := granularities[p.granularity]; !ok {
		return p, badParam("granularity", "unknown granularity %q: want hour, day, week or month", p.granularity)
	}
	var err error
	if p.top, err = intParam(c, "top", 0, 1, 100); err != nil {
		return p, err
	}
	now := q.now()
	to := nextPeriod(floorPeriod(now, p.granularity, s.loc), p.granularity, s.loc)
	if raw := c.Query("to"); raw != "" {
		if to, err = parseTime(raw, s.loc); err != nil {
			return p, badParam("to", "to %q: want RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, local midnight in tz)", raw)
		}
	}
	from := to
	for range defaultPeriods[p.granularity] {
		from = floorPeriod(from.Add(-time.Second), p.granularity, s.loc)
	}
	if raw := c.Query("from"); raw != "" {
		if from, err = parseTime(raw, s.loc); err != nil {
			return p, badParam("from", "from %q: want RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, local midnight in tz)", raw)
		}
	}
	if !from.Before(to) {
		return p, badParam("from", "from must be before to")
	}
	// Every point covers a whole period: to moves up to a period boundary.
	p.from, p.to = floorPeriod(from, p.granularity, s.loc), floorPeriod(to, p.granularity, s.loc)
	if p.to.Before(to) {
		p.to = nextPeriod(p.to, p.granularity, s.loc)
	}
	if n := len(periods(p.from, p.to, p.granularity, s.loc, maxPeriods+1)); n > maxPeriods {
		return p, badParam("from", "more than %d %s periods between from and to: use a coarser granularity", maxPeriods, p.granularity)
	}
	for _, ids := range [][]string{p.orgs, p.models, p.languages, p.plans} {
		if len(ids) > 1000 {
			return p, badParam("org", "at most 1000 values per filter")
		}
	}
	return p, nil
}

func parseTime(raw string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, raw); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, raw, loc)
}

// floorPeriod is the start of the period holding t, in loc.
func floorPeriod(t time.Time, granularity string, loc *time.Location) time.Time {
	lt := t.In(loc)
	switch granularity {
	case "hour":
		// Offsets are whole multiples of 15 minutes, so the local hour
		// starts lt.Minute() minutes before t, even in a repeated DST hour.
		return lt.Add(-time.Duration(lt.Minute())*time.Minute - time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond()))
	case "week":
		d := startOfDay(lt, loc)
		return time.Date(d.Year(), d.Month(), d.Day()-(int(d.Weekday())+6)%7, 0, 0, 0, 0, loc)
	case "month":
		return startOfMonth(lt, loc)
	}
	return startOfDay(lt, loc)
}

func nextPeriod(p time.Time, granularity string, loc *time.Location) time.Time {
	p = p.In(loc)
	switch granularity {
	case "hour":
		return floorPeriod(p.Add(time.Hour), granularity, loc)
	case "week":
		return time.Date(p.Year(), p.Month(), p.Day()+7, 0, 0, 0, 0, loc)
	case "month":
		return time.Date(p.Year(), p.Month()+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(p.Year(), p.Month(), p.Day()+1, 0, 0, 0, 0, loc)
}

// minWholeDays: fewer whole days than this are read from usage_15m alone.
const minWholeDays = 3

// wholeSpans lists, as ranges, the UTC months and the other UTC days within
// [from, to) that lie in one period of granularity in loc (any whole ones
// without a granularity), so that usage_1mo and usage_1d rows can stand for
// their buckets. Nil for hour granularity and for short ranges.
func wholeSpans(from, to time.Time, granularity string, loc *time.Location) (months, days [][2]time.Time) {
	if granularity == "hour" {
		return nil, nil
	}
	whole := func(start, end time.Time) bool {
		return !start.Before(from) && !end.After(to) &&
			(granularity == "" || floorPeriod(start, granularity, loc).Equal(floorPeriod(end.Add(-15*time.Minute), granularity, loc)))
	}
	add := func(rs [][2]time.Time, start, end time.Time) [][2]time.Time {
		if k := len(rs); k > 0 && rs[k-1][1].Equal(start) {
			rs[k-1][1] = end
			return rs
		}
		return append(rs, [2]time.Time{start, end})
	}
	const day = 24 * time.Hour
	n := 0
	d := from.UTC().Truncate(day)
	if d.Before(from) {
		d = d.Add(day)
	}
	for !d.Add(day).After(to) {
		if d.Day() == 1 {
			if end := d.AddDate(0, 1, 0); whole(d, end) {
				months = add(months, d, end)
				d, n = end, n+31
				continue
			}
		}
		if whole(d, d.Add(day)) {
			days = add(days, d, d.Add(day))
			n++
		}
		d = d.Add(day)
	}
	if n < minWholeDays {
		return nil, nil
	}
	return months, days
}

// tailMonth lets sums over [from, to) (no periods, no distinct users) read
// the UTC month holding to whole from the month tables and take off its
// buckets outside the range, instead of reading its days from the day
// tables and the buckets of its first and last day: a current period
// ending now then reads one row per organization for the month, a few
// hours of buckets before a zone's month start west of UTC and, after
// now, usually nothing (the organizations list's usage for the largest
// benchmark reseller: 14–24 ms of ClickHouse CPU before, 7–8 ms after).
// Only when the month starts less than a day before from (or in the
// range), to is not before now (what is taken off at the end lies in the
// future) and days (wholeSpans's) hold a whole day of the month; else the
// spans come back unchanged and minus is nil.
func tailMonth(from, to, now time.Time, months, days [][2]time.Time) (m, d, minus [][2]time.Time) {
	const day = 24 * time.Hour
	t := to.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	if from.Sub(start) >= day || !start.Before(to) || to.Before(now) || len(days) == 0 || days[len(days)-1][1].Before(start.Add(day)) {
		return months, days, nil
	}
	for _, r := range days {
		if r[0].Before(start) {
			if r[1].After(start) {
				r[1] = start
			}
			d = append(d, r)
		}
	}
	if start.Before(from) {
		minus = append(minus, [2]time.Time{start, from})
	}
	return append(slices.Clone(months), [2]time.Time{start, end}), d, append(minus, [2]time.Time{to, end})
}

// shiftMonths is the monthShift of month periods [from, to) in loc: the
// UTC months whose 16th lies in the range, and the buckets between each of
// the range's local month boundaries and the nearest UTC month start. Nil
// when fewer than two UTC months qualify.
func shiftMonths(from, to time.Time, loc *time.Location) *monthShift {
	const day = 24 * time.Hour
	var sh monthShift
	f := from.UTC()
	n := 0
	for m := time.Date(f.Year(), f.Month()-1, 1, 0, 0, 0, 0, time.UTC); m.Before(to.Add(31 * day)); m = m.AddDate(0, 1, 0) {
		if mid := m.Add(15 * day); mid.Before(from) || !mid.Before(to) {
			continue
		}
		if sh.from.IsZero() {
			sh.from = m
		}
		sh.to = m.AddDate(0, 1, 0)
		n++
	}
	if n < 2 {
		return nil
	}
	// The buckets between a local month start and its UTC month start are
	// the only ones the UTC month rows put in the wrong period.
	const bucket = 15 * time.Minute
	for p := floorPeriod(from, "month", loc); !p.After(to); p = nextPeriod(p, "month", loc) {
		l := p.In(loc)
		lo, hi := p.UTC(), time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, time.UTC)
		if hi.Before(lo) {
			lo, hi = hi, lo
		}
		lo = lo.Truncate(bucket)
		if t := hi.Truncate(bucket); t.Before(hi) {
			hi = t.Add(bucket)
		}
		if !lo.Before(hi) {
			continue
		}
		if k := len(sh.zones); k > 0 && !sh.zones[k-1][1].Before(lo) {
			sh.zones[k-1][1] = hi
			continue
		}
		sh.zones = append(sh.zones, [2]time.Time{lo, hi})
	}
	return &sh
}

// periods lists the period starts in [from, to), at most limit of them.
func periods(from, to time.Time, granularity string, loc *time.Location, limit int) []time.Time {
	var out []time.Time
	for p := floorPeriod(from, granularity, loc); p.Before(to) && len(out) < limit; p = nextPeriod(p, granularity, loc) {
		out = append(out, p)
	}
	return out
}

// periodKey is the key the usage queries give the period starting at p
// (the inverse of periodStart).
func periodKey(p time.Time, granularity string, loc *time.Location) uint32 {
	if granularity == "week" || granularity == "month" {
		p = p.In(loc)
		return uint32(p.Year()*10000 + int(p.Month())*100 + p.Day())
	}
	return uint32(p.Unix())
}

// periodStart turns a period key from SQL (see granularities) into its start.
func periodStart(key uint32, granularity string, loc *time.Location) time.Time {
	if granularity == "week" || granularity == "month" {
		return time.Date(int(key/10000), time.Month(key/100%100), int(key%100), 0, 0, 0, 0, loc)
	}
	return time.Unix(int64(key), 0).In(loc)
}

// agg is one row of usage aggregates.
type agg struct {
	mediaMS, completed, failed, processingMS, users uint64
	usersUnknown                                    bool
}

func (a *agg) add(b agg) {
	a.mediaMS += b.mediaMS
	a.completed += b.completed
	a.failed += b.failed
	a.processingMS += b.processingMS
	a.users += b.users
	a.usersUnknown = true // distinct users do not add up
}

func (a agg) values(metrics []string) map[string]any {
	out := make(map[string]any, len(metrics))
	finished := a.completed + a.failed
	for _, m := range metrics {
		switch m {
		case "minutes":
			out[m] = msToMinutes(a.mediaMS)
		case "jobs_completed":
			out[m] = a.completed
		case "jobs_failed":
			out[m] = a.failed
		case "failure_rate":
			out[m] = 0.0
			if finished > 0 {
				out[m] = round(float64(a.failed)/float64(finished), 4)
			}
		case "distinct_users":
			if a.usersUnknown {
				out[m] = nil
			} else {
				out[m] = a.users
			}
		case "avg_processing_ms":
			out[m] = 0.0
			if finished > 0 {
				out[m] = round(float64(a.processingMS)/float64(finished), 1)
			}
		}
	}
	return out
}

type usageSeries struct {
	// Group holds the value of each group_by dimension ("others" for the
	// sum of the groups beyond ?top).
	Group  map[string]string `json:"group"`
	Others bool              `json:"others,omitempty"`
	Totals map[string]any    `json:"totals"`
	Points []map[string]any  `json:"points"`
}

type usageResponse struct {
	TZ          string        `json:"tz"`
	Granularity string        `json:"granularity"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	GroupBy     []string      `json:"group_by"`
	Metrics     []string      `json:"metrics"`
	Series      []usageSeries `json:"series"`
}

func (q *Query) usage(c *fiber.Ctx) error {
	s := scopeOf(c)
	p, err := q.parseUsage(c, s)
	if err != nil {
		return err
	}
	resp, err := q.runUsage(c.UserContext(), s, p)
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

type groupKey [2]string

func (q *Query) runUsage(ctx context.Context, s scope, p usageParams) (usageResponse, error) {
	var (
		d   usageData
		err error
	)
	top := false
	if rankFirst(p, math.MaxInt) { // worth counting the organizations
		orgs, err := q.orgCount(ctx, s.reseller)
		if err != nil {
			return usageResponse{}, err
		}
		top = rankFirst(p, orgs)
	}
	if top {
		d, err = q.usageTop(ctx, s, p)
	} else {
		d, err = q.usageData(ctx, s, p)
	}
	if err != nil {
		return usageResponse{}, err
	}
	return renderUsage(s, p, d), nil
}

// usageData is what the queries of a usage request found: the groups in
// rank order (minutes, most first, then by key), their totals over the
// range and their rows per period.
type usageData struct {
	order  []groupKey
	totals map[groupKey]agg
	rows   []timedRow
}

type timedRow struct {
	key uint32
	k   groupKey
	a   agg
}

// usageBase is the usage query over p's whole range, without periods.
func usageBase(s scope, p usageParams) usageQuery {
	base := usageQuery{
		reseller: s.reseller, from: p.from.UTC(), to: p.to.UTC(), tz: s.tz, groupBy: p.groupBy,
		orgs: p.orgs, models: p.models, languages: p.languages, plans: p.plans,
		users: slices.Contains(p.metrics, "distinct_users"),
	}
	// The totals query (no period) reads every whole UTC month and day in
	// the range; the series only those inside one of its periods.
	base.months, base.days = wholeSpans(p.from, p.to, "", s.loc)
	return base
}

// rankGroups sorts groups by their totals' minutes, most first, then by
// key.
func rankGroups(order []groupKey, totals map[groupKey]agg) {
	slices.SortStableFunc(order, func(a, b groupKey) int {
		if d := int64(totals[b].mediaMS) - int64(totals[a].mediaMS); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	})
}

// usageData runs the queries of a usage request.
func (q *Query) usageData(ctx context.Context, s scope, p usageParams) (usageData, error) {
	base := usageBase(s, p)
	// Totals per group rank the groups. Exact distinct users need their own
	// query over the whole range (run alongside the series); the other
	// metrics add up from the series.
	totals := map[groupKey]agg{}
	var order []groupKey
	g, gctx := errgroup.WithContext(ctx)
	timed := base
	timed.granularity = p.granularity
	timed.months, timed.days = wholeSpans(p.from, p.to, p.granularity, s.loc)
	// Distinct users come from org_user_months and org_user_days, and the
	// series' other metrics from sums alone: per period of a monthly series
	// from the months, of a daily or weekly one from the days, with the
	// whole range's total from the same rows. Without such a series, the
	// total comes from the months when no UTC month holds two of the
	// range's bounds (any range over a month boundary, or one month), else
	// from the days (a shorter range). With model or language (only the
	// days have them), only daily and weekly series do so; the rest merge
	// the user states of the model-level usage tables.
	type periodGroup struct {
		period uint32
		k      groupKey
	}
	var (
		seriesUsers map[periodGroup]uint64
		totalUsers  map[groupKey]uint64
	)
	// countSeries keeps a series' distinct users, the range's (period 1)
	// in totalUsers.
	countSeries := func(period uint32, k groupKey, n uint64) {
		if period == 1 {
			totalUsers[k] = n
		} else {
			seriesUsers[periodGroup{period, k}] = n
		}
	}
	modelLevel := base.tables().hasModel()
	var slots userSlotsQuery
	slotsOK := false
	if base.users && seriesUserUnits[p.granularity] == "day" && p.to.Sub(p.from) >= minSlotsRange {
		slots, slotsOK = userSlotsOf(base, p.from, p.to, p.granularity, s.loc)
	}
	if slotsOK {
		// One query counts the periods and the range (as period 1).
		timed.users = false
		seriesUsers, totalUsers = map[periodGroup]uint64{}, map[groupKey]uint64{}
		g.Go(func() error {
			return q.scanUserCounts(gctx, slots, countSeries)
		})
	} else if base.users && (!modelLevel || seriesUserUnits[p.granularity] == "day") {
		monthSpans, monthsOK := userSpansOf(p.from, p.to, "", "month", s.loc)
		monthsOK = monthsOK && !modelLevel
		series := userSpansQuery{usage: base, unit: seriesUserUnits[p.granularity]}
		ok := false
		if series.unit != "" {
			series.spans, ok = userSpansOf(p.from, p.to, p.granularity, series.unit, s.loc)
		}
		if ok {
			timed.users = false
			seriesUsers = map[periodGroup]uint64{}
			// The range's total comes with the periods (as period 1), unless
			// each span lies in one period (a simpler query counts those) or
			// the days' range total can come from the months: org_user_months
			// holds a fifth of the rows (one month by day in New York, the
			// largest benchmark reseller: 94 ms with the total, 61 + 19 ms
			// for the two queries run at once).
			if series.total = !series.whole() && !(series.unit == "day" && monthsOK); series.total {
				totalUsers = map[groupKey]uint64{}
			}
			g.Go(func() error {
				return q.scanUserCounts(gctx, series, countSeries)
			})
		}
		if totalUsers == nil {
			whole := userSpansQuery{usage: base, unit: "month", spans: monthSpans}
			if ok = monthsOK; !ok {
				whole.unit = "day"
				whole.spans, ok = userSpansOf(p.from, p.to, "", whole.unit, s.loc)
			}
			if ok {
				totalUsers = map[groupKey]uint64{}
				g.Go(func() error {
					return q.scanUserCounts(gctx, whole, func(_ uint32, k groupKey, n uint64) {
						totalUsers[k] = n
					})
				})
			}
		}
	}
	// The other totals add up from the series, except distinct users not
	// counted above: those come from the series' WITH TOTALS row without a
	// group-by, else from a query over the whole range.
	sumSeries := !base.users || totalUsers != nil
	timed.totals = !sumSeries && len(p.groupBy) == 0 && p.granularity != ""
	if !sumSeries && !timed.totals {
		g.Go(func() error {
			_, err := q.scanUsage(gctx, base, len(p.groupBy), func(_ uint32, k groupKey, a agg) {
				totals[k] = a
				order = append(order, k)
			})
			return err
		})
	}
	if p.granularity == "month" && !timed.users && len(timed.months) == 0 {
		timed.shift = shiftMonths(p.from, p.to, s.loc)
	}
	var timedRows []timedRow
	g.Go(func() error {
		total, err := q.scanUsage(gctx, timed, len(p.groupBy), func(key uint32, k groupKey, a agg) {
			timedRows = append(timedRows, timedRow{key, k, a})
		})
		if timed.totals && len(timedRows) > 0 {
			totals[groupKey{}] = total
			order = append(order, groupKey{})
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return usageData{}, err
	}
	if seriesUsers != nil {
		seen := map[periodGroup]bool{}
		for i, r := range timedRows {
			pg := periodGroup{r.key, r.k}
			timedRows[i].a.users, seen[pg] = seriesUsers[pg], true
		}
		for pg, n := range seriesUsers { // users with no usage rows: none expected
			if !seen[pg] {
				timedRows = append(timedRows, timedRow{pg.period, pg.k, agg{users: n}})
			}
		}
	}
	if sumSeries {
		for _, r := range timedRows {
			t, ok := totals[r.k]
			if !ok {
				order = append(order, r.k)
			}
			t.add(r.a)
			totals[r.k] = t
		}
	}
	if totalUsers != nil {
		for k := range totalUsers {
			if _, ok := totals[k]; !ok {
				order = append(order, k)
			}
		}
		for _, k := range order {
			t := totals[k]
			t.users, t.usersUnknown = totalUsers[k], false
			totals[k] = t
		}
	}
	rankGroups(order, totals)
	return usageData{order: order, totals: totals, rows: timedRows}, nil
}

// renderUsage lays the data out as series over every period: the first
// p.top groups, then "others" (the sum of the rest) when there are more.
func renderUsage(s scope, p usageParams, d usageData) usageResponse {
	order, totals, timedRows := d.order, d.totals, d.rows
	keep := order
	var rest []groupKey
	if p.top > 0 && len(order) > p.top {
		keep, rest = order[:p.top], order[p.top:]
	}
	if len(p.groupBy) == 0 && len(keep) == 0 {
		keep = []groupKey{{}} // one zero series
	}
	index := map[groupKey]int{}
	for i, k := range keep {
		index[k] = i
	}
	isRest := map[groupKey]bool{}
	for _, k := range rest {
		isRest[k] = true
	}

	periodList := periods(p.from, p.to, p.granularity, s.loc, maxPeriods)
	at := map[int64]int{}
	for i, t := range periodList {
		at[t.Unix()] = i
	}
	grid := make([][]agg, len(keep)+1) // last row: others
	for i := range grid {
		grid[i] = make([]agg, len(periodList))
	}
	for _, r := range timedRows {
		pi, ok := at[periodStart(r.key, p.granularity, s.loc).Unix()]
		if !ok {
			continue
		}
		switch {
		case isRest[r.k]:
			grid[len(keep)][pi].add(r.a)
		default:
			if gi, ok := index[r.k]; ok {
				grid[gi][pi] = r.a
			}
		}
	}

	resp := usageResponse{
		TZ: s.tz, Granularity: p.granularity, From: p.from.In(s.loc), To: p.to.In(s.loc),
		GroupBy: nonNil(p.groupBy), Metrics: p.metrics, Series: []usageSeries{},
	}
	series := func(group map[string]string, others bool, total agg, row []agg) usageSeries {
		out := usageSeries{Group: group, Others: others, Totals: total.values(p.metrics), Points: make([]map[string]any, len(periodList))}
		for i, t := range periodList {
			v := row[i].values(p.metrics)
			v["period"] = t.In(s.loc)
			out.Points[i] = v
		}
		return out
	}
	for i, k := range keep {
		group := map[string]string{}
		for j, d := range p.groupBy {
			group[d] = k[j]
		}
		resp.Series = append(resp.Series, series(group, false, totals[k], grid[i]))
	}
	if len(rest) > 0 {
		var total agg
		for _, k := range rest {
			total.add(totals[k])
		}
		group := map[string]string{}
		for _, d := range p.groupBy {
			group[d] = "others"
		}
		resp.Series = append(resp.Series, series(group, true, total, grid[len(keep)]))
	}
	return resp
}

// userCountQuery counts distinct users per period and group: rows of the
// period key (1 for the whole range), the group's dimensions and the count.
type userCountQuery interface {
	build() (string, []any)
	dims() int
}

func (q userSpansQuery) dims() int { return len(q.usage.groupBy) }
func (q userSlotsQuery) dims() int { return len(q.usage.groupBy) }

// scanUserCounts runs a userCountQuery and calls fn per row; period is 1
// for the whole range.
func (q *Query) scanUserCounts(ctx context.Context, uq userCountQuery, fn func(period uint32, k groupKey, n uint64)) error {
	sql, args := uq.build()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("distinct users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			period uint32
			k      groupKey
			n      uint64
		)
		dest := []any{&period}
		for i := range uq.dims() {
			dest = append(dest, &k[i])
		}
		dest = append(dest, &n)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("distinct users: %w", err)
		}
		fn(period, k, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("distinct users: %w", err)
	}
	return nil
}

// minSlotsRange is the shortest range whose daily or weekly distinct users
// come from user_month_slots: it reads every user row of each UTC month
// the range touches (but a partial day at either end), org_user_days only
// the range's days (one row per user and day), so below about a week the
// days read less.
const minSlotsRange = 7 * 24 * time.Hour

// userSlotsOf is the userSlotsQuery, with the range's total, of the
// periods of [from, to) (local period starts). False when they are not
// whole 15-minute slots or too many.
func userSlotsOf(base usageQuery, from, to time.Time, granularity string, loc *time.Location) (userSlotsQuery, bool) {
	// One period more than it takes, for slotRunsOf to refuse.
	bounds := periods(from, to, granularity, loc, maxSlotPeriods+1)
	keys := make([]uint32, len(bounds))
	for i, p := range bounds {
		keys[i] = periodKey(p, granularity, loc)
	}
	bounds = append(bounds, to)
	runs, ok := slotRunsOf(bounds)
	if !ok {
		return userSlotsQuery{}, false
	}
	months, edges := slotMonthsOf(bounds)
	return userSlotsQuery{usage: base, runs: runs, keys: keys, total: true, months: months, edges: edges}, true
}

// seriesUserUnits is the unit of the userSpansQuery of each granularity
// whose periods' distinct users it can count.
var seriesUserUnits = map[string]string{"day": "day", "week": "day", "month": "month"}

// userSpansOf lists the UTC months or days (unit) that [from, to) (local
// period starts) touches, each with the one period boundary inside it (the
// range's bounds without a granularity, every local period start with
// one). False when a span holds two: no zone's month starts drift that
// far, but a 23-hour local day can start and end inside one UTC day.
func userSpansOf(from, to time.Time, granularity, unit string, loc *time.Location) ([]userSpan, bool) {
	key := func(t time.Time) uint32 {
		if t.Before(from) || !t.Before(to) {
			return 0
		}
		if granularity == "" {
			return 1
		}
		return periodKey(floorPeriod(t, granularity, loc), granularity, loc)
	}
	bounds := []time.Time{from, to}
	if granularity != "" {
		bounds = nil
		for p := from; !p.After(to); p = nextPeriod(p, granularity, loc) {
			bounds = append(bounds, p)
		}
	}
	f := from.UTC()
	first := time.Date(f.Year(), f.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	if unit == "day" {
		first = time.Date(f.Year(), f.Month(), f.Day()-1, 0, 0, 0, 0, time.UTC)
	}
	var out []userSpan
	for m := first; m.Before(to); m = spanEnd(m, unit) {
		end := spanEnd(m, unit)
		if !end.After(from) {
			continue
		}
		us := userSpan{start: m, boundary: end}
		n := 0
		for _, b := range bounds {
			if b.After(m) && b.Before(end) {
				us.boundary = b
				n++
			}
		}
		if n > 1 {
			return nil, false
		}
		us.before = key(m)
		if n == 1 {
			us.after = key(us.boundary)
		}
		out = append(out, us)
	}
	return out, true
}

// scanUsage runs a usage query and calls fn per row; period is 0 without
// a granularity. With uq.totals it returns the WITH TOTALS row.
func (q *Query) scanUsage(ctx context.Context, uq usageQuery, dims int, fn func(period uint32, k groupKey, a agg)) (agg, error) {
	var total agg
	sql, args := uq.build()
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return total, fmt.Errorf("usage: %w", err)
	}
	defer rows.Close()
	dest := func(period *uint32, k *groupKey, a *agg) []any {
		var d []any
		if uq.granularity != "" {
			d = append(d, period)
		}
		for i := range dims {
			d = append(d, &k[i])
		}
		return append(d, &a.mediaMS, &a.completed, &a.failed, &a.processingMS, &a.users)
	}
	for rows.Next() {
		var (
			period uint32
			k      groupKey
			a      agg
		)
		if err := rows.Scan(dest(&period, &k, &a)...); err != nil {
			return total, fmt.Errorf("usage: %w", err)
		}
		if uq.granularity == "" && dims == 0 && a.completed == 0 && a.failed == 0 && a.mediaMS == 0 && a.users == 0 {
			continue // the empty aggregate of no rows
		}
		fn(period, k, a)
	}
	if err := rows.Err(); err != nil {
		return total, fmt.Errorf("usage: %w", err)
	}
	if uq.totals {
		var period uint32
		var k groupKey
		if err := rows.Totals(dest(&period, &k, &total)...); err != nil {
			return total, fmt.Errorf("usage totals: %w", err)
		}
	}
	return total, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
