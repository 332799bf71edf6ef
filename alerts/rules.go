package alerts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tallyhq/tally/alertspec"
)

// Rule names (see alertspec): the last token of an alert's subject.
const (
	RuleQuota         = alertspec.RuleQuota
	RuleLowUsage      = alertspec.RuleLowUsage
	RuleNoJobs        = alertspec.RuleNoJobs
	RulePaymentFailed = alertspec.RulePaymentFailed
	RuleExpiring      = alertspec.RuleExpiring
	RuleExpired       = alertspec.RuleExpired
	RuleSpike         = alertspec.RuleSpike
	RuleDrop          = alertspec.RuleDrop
	RuleFailureRate   = alertspec.RuleFailureRate
	RuleCustomer      = alertspec.RuleCustomer
)

// errNotReady is returned by a rule whose data is not complete yet: the
// window is skipped, firing alerts stay as they are.
var errNotReady = errors.New("data not complete yet")

// rule finds the alerts that should be firing at now.
type rule struct {
	name string
	eval func(ctx context.Context, now time.Time, st settings) ([]Alert, error)
}

func (a *Alerts) defaultRules() []rule {
	return []rule{
		{RuleQuota, a.quotaRule},
		{RuleLowUsage, a.lowUsageRule},
		{RuleNoJobs, a.noJobsRule},
		{RulePaymentFailed, a.paymentFailedRule},
		{RuleExpiring, a.expiringRule},
		{RuleExpired, a.expiredRule},
		{RuleSpike, a.hourRule(RuleSpike)},
		{RuleDrop, a.hourRule(RuleDrop)},
		{RuleFailureRate, a.hourRule(RuleFailureRate)},
	}
}

const (
	timeKey = "2006-01-02T15:04:05Z"
	hourKey = "2006-01-02T15:00Z"
)

type subUsage struct {
	reseller, org, plan, status string
	quotaMinutes                uint64
	priceMinor                  int64
	periodStart, periodEnd      time.Time
	usedMS, recentMS            uint64
}

func (s subUsage) usedMinutes() float64 { return float64(s.usedMS) / 60000 }

// cycleMemo keeps what several rules of one evaluation share (the
// subscription usage of quota, low usage and no jobs; the hour series of the
// spike, drop and failure-rate rules) for one evaluation time. Rules of a
// cycle run one after another with the same now, so each query runs once
// per cycle.
type cycleMemo struct {
	mu   sync.Mutex
	now  time.Time
	at   time.Time // wall clock when the entry was started
	vals map[string]any
}

// cycleMemoTTL bounds how long a memo entry serves an evaluation time
// (a clock that stands still in tests must not freeze the data).
const cycleMemoTTL = 20 * time.Second

func memoized[T any](a *Alerts, key string, now time.Time, load func() (T, error)) (T, error) {
	m := &a.memo
	m.mu.Lock()
	if m.vals != nil && m.now.Equal(now) && time.Since(m.at) < cycleMemoTTL {
		if v, ok := m.vals[key]; ok {
			m.mu.Unlock()
			return v.(T), nil
		}
	} else {
		m.now, m.at, m.vals = now, time.Now(), map[string]any{}
	}
	m.mu.Unlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	if m.vals != nil && m.now.Equal(now) {
		m.vals[key] = v
	}
	m.mu.Unlock()
	return v, nil
}

func (a *Alerts) subscriptionUsage(ctx context.Context, now time.Time) ([]subUsage, error) {
	return memoized(a, "subscription usage", now, func() ([]subUsage, error) { return a.loadSubscriptionUsage(ctx, now) })
}

func (a *Alerts) loadSubscriptionUsage(ctx context.Context, now time.Time) ([]subUsage, error) {
	rows, err := a.conn.Query(ctx, subscriptionUsageSQL, now, now.Add(-a.cfg.LowUsageWindow), now, now, now, now, now)
	if err != nil {
		return nil, fmt.Errorf("subscription usage: %w", err)
	}
	defer rows.Close()
	var out []subUsage
	for rows.Next() {
		var s subUsage
		if err := rows.Scan(&s.reseller, &s.org, &s.plan, &s.status, &s.quotaMinutes, &s.priceMinor,
			&s.periodStart, &s.periodEnd, &s.usedMS, &s.recentMS); err != nil {
			return nil, fmt.Errorf("subscription usage: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subscription usage: %w", err)
	}
	return out, nil
}

// quotaFindings: every threshold an organization's usage has reached in its
// current period, against its current quota. Keys carry the period start,
// so a threshold fires once per period even when the plan changes.
func quotaFindings(subs []subUsage, st settings) []Alert {
	var out []Alert
	for _, s := range subs {
		if s.quotaMinutes == 0 {
			continue
		}
		pct := s.usedMinutes() / float64(s.quotaMinutes) * 100
		for _, t := range st.of(s.reseller).QuotaThresholds {
			if pct < float64(t) {
				continue
			}
			sev := "warning"
			if t >= 100 {
				sev = "critical"
			}
			out = append(out, Alert{
				ResellerID: s.reseller, OrgID: s.org, Period: s.periodStart.Format(timeKey), Threshold: strconv.Itoa(t),
				Severity: sev,
				Title:    fmt.Sprintf("Usage reached %d%% of quota: %.0f of %d minutes", t, s.usedMinutes(), s.quotaMinutes),
				Details: map[string]any{"plan": s.plan, "used_minutes": round2(s.usedMinutes()), "quota_minutes": s.quotaMinutes,
					"percent": round2(pct), "period_start": s.periodStart, "period_end": s.periodEnd},
			})
		}
	}
	return out
}

func (a *Alerts) quotaRule(ctx context.Context, now time.Time, st settings) ([]Alert, error) {
	subs, err := a.subscriptionUsage(ctx, now)
	if err != nil {
		return nil, err
	}
	return quotaFindings(subs, st), nil
}

func paid(s subUsage) bool { return s.priceMinor > 0 && s.status == "active" }

// lowUsageFindings: paid organizations that used less than share of their
// quota pro-rated to the last window of the current period (recentMS was
// summed over the stage's window, so the window is the stage's).
func lowUsageFindings(subs []subUsage, now time.Time, window time.Duration, st settings) []Alert {
	var out []Alert
	for _, s := range subs {
		share := st.of(s.reseller).LowUsageShare
		length := s.periodEnd.Sub(s.periodStart)
		if !paid(s) || s.quotaMinutes == 0 || length <= 0 {
			continue
		}
		span := now.Sub(s.periodStart)
		span = min(span, window)
		if span < window/2 {
			continue
		}
		expected := float64(s.quotaMinutes) * float64(span) / float64(length)
		used := float64(s.recentMS) / 60000
		if used >= share*expected {
			continue
		}
		days := span.Hours() / 24
		out = append(out, Alert{
			ResellerID: s.reseller, OrgID: s.org, Period: s.periodStart.Format(timeKey), Severity: "info",
			Title: fmt.Sprintf("Low usage: %.0f minutes in the last %.0f days, %.0f%% of the %.0f its %s plan pro-rates to", used, days, 100*used/expected, expected, s.plan),
			Details: map[string]any{"plan": s.plan, "recent_minutes": round2(used), "expected_minutes": round2(expected), "days": round2(days),
				"period_minutes": round2(s.usedMinutes()), "quota_minutes": s.quotaMinutes, "share": share},
		})
	}
	return out
}

func (a *Alerts) lowUsageRule(ctx context.Context, now time.Time, st settings) ([]Alert, error) {
	subs, err := a.subscriptionUsage(ctx, now)
	if err != nil {
		return nil, err
	}
	return lowUsageFindings(subs, now, a.cfg.LowUsageWindow, st), nil
}

func (a *Alerts) noJobsRule(ctx context.Context, now time.Time, st settings) ([]Alert, error) {
	subs, err := a.subscriptionUsage(ctx, now)
	if err != nil {
		return nil, err
	}
	last, err := a.lastJobs(ctx, subs, now)
	if err != nil {
		return nil, err
	}
	return noJobsFindings(subs, last, now, st), nil
}

// noJobsRecent is the window of the first last-job query; organizations
// without a job in it are looked up through the primary key. Any value is
// exact; this one keeps both queries small.
const noJobsRecent = 14 * 24 * time.Hour

// lastJobs returns the bucket of the latest job event up to now of every
// paid organization of subs that has one.
func (a *Alerts) lastJobs(ctx context.Context, subs []subUsage, now time.Time) (map[[2]string]time.Time, error) {
	last := map[[2]string]time.Time{}
	scan := func(sql string, args ...any) error {
		rows, err := a.conn.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("last job: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r, o string
			var t time.Time
			if err := rows.Scan(&r, &o, &t); err != nil {
				return fmt.Errorf("last job: %w", err)
			}
			last[[2]string{r, o}] = t
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("last job: %w", err)
		}
		return nil
	}
	if err := scan(recentLastJobSQL, now.Add(-noJobsRecent), now); err != nil {
		return nil, err
	}
	resellers, orgs := map[string]bool{}, map[string]bool{}
	var rs, os []string
	for _, s := range subs {
		if _, ok := last[[2]string{s.reseller, s.org}]; ok || !paid(s) {
			continue
		}
		if !resellers[s.reseller] {
			resellers[s.reseller] = true
			rs = append(rs, s.reseller)
		}
		if !orgs[s.org] {
			orgs[s.org] = true
			os = append(os, s.org)
		}
	}
	if len(os) == 0 {
		return last, nil
	}
	// The superset's other pairs get their latest bucket too: the same
	// value for those the first query found.
	if err := scan(lastJobOfSQL, rs, os, now); err != nil {
		return nil, err
	}
	return last, nil
}

// noJobsFindings: paid organizations without a job for days. The period of
// the key is the day of the last job ("never" without one), so an
// organization that comes back and goes quiet again alerts again.
func noJobsFindings(subs []subUsage, last map[[2]string]time.Time, now time.Time, st settings) []Alert {
	var out []Alert
	for _, s := range subs {
		days := st.of(s.reseller).NoJobsDays
		limit := now.Add(-time.Duration(days) * 24 * time.Hour)
		if !paid(s) {
			continue
		}
		t, ok := last[[2]string{s.reseller, s.org}]
		period, title := "never", fmt.Sprintf("No jobs since the subscription started on %s", s.periodStart.Format(time.DateOnly))
		switch {
		case ok && t.After(limit):
			continue
		case ok:
			period, title = t.Format(time.DateOnly), fmt.Sprintf("No jobs for %d days (last on %s)", int(now.Sub(t).Hours()/24), t.Format(time.DateOnly))
		case s.periodStart.After(limit):
			continue
		}
		out = append(out, Alert{ResellerID: s.reseller, OrgID: s.org, Period: period, Severity: "warning", Title: title,
			Details: map[string]any{"plan": s.plan, "days": days}})
	}
	return out
}

type invoiceEvent struct {
	id, typ, reseller, org, ref string
	time                        time.Time
	amount                      int64
	currency, reason            string
}

func (a *Alerts) paymentFailedRule(ctx context.Context, now time.Time, _ settings) ([]Alert, error) {
	rows, err := a.conn.Query(ctx, invoicesSQL, now.Add(-a.cfg.PaymentLookback), now)
	if err != nil {
		return nil, fmt.Errorf("invoices: %w", err)
	}
	defer rows.Close()
	var evs []invoiceEvent
	for rows.Next() {
		var e invoiceEvent
		if err := rows.Scan(&e.id, &e.typ, &e.reseller, &e.org, &e.ref, &e.time, &e.amount, &e.currency, &e.reason); err != nil {
			return nil, fmt.Errorf("invoices: %w", err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("invoices: %w", err)
	}
	return paymentFindings(evs), nil
}

// paymentFindings: one alert per failed invoice (events oldest first) until
// the organization pays an invoice after the failure.
func paymentFindings(evs []invoiceEvent) []Alert {
	type open struct {
		alert Alert
		at    time.Time
	}
	byKey := map[string]*open{}
	var order []string
	for _, e := range evs {
		org := [2]string{e.reseller, e.org}
		switch e.typ {
		case "invoice.payment_failed":
			ref := e.ref
			if ref == "" {
				ref = e.id
			}
			k := e.reseller + "|" + e.org + "|" + ref
			if byKey[k] == nil {
				order = append(order, k)
			}
			title := fmt.Sprintf("Payment failed: %s %s", minor(e.amount), e.currency)
			if e.reason != "" {
				title += " (" + e.reason + ")"
			}
			byKey[k] = &open{at: e.time, alert: Alert{ResellerID: e.reseller, OrgID: e.org, Period: ref, Severity: "warning", Title: title,
				Details: map[string]any{"invoice_id": e.ref, "amount_minor": e.amount, "currency": e.currency, "reason": e.reason, "failed_at": e.time}}}
		case "invoice.paid":
			for k, o := range byKey {
				if o != nil && o.alert.ResellerID == org[0] && o.alert.OrgID == org[1] && !e.time.Before(o.at) {
					byKey[k] = nil
				}
			}
		}
	}
	var out []Alert
	for _, k := range order {
		if o := byKey[k]; o != nil {
			out = append(out, o.alert)
		}
	}
	return out
}

type ending struct {
	reseller, org, plan, status string
	periodEnd                   time.Time
}

func (a *Alerts) endingSubscriptions(ctx context.Context, since, until time.Time) ([]ending, error) {
	rows, err := a.conn.Query(ctx, endingSubscriptionsSQL, since, until)
	if err != nil {
		return nil, fmt.Errorf("ending subscriptions: %w", err)
	}
	defer rows.Close()
	var out []ending
	for rows.Next() {
		var e ending
		if err := rows.Scan(&e.reseller, &e.org, &e.plan, &e.status, &e.periodEnd); err != nil {
			return nil, fmt.Errorf("ending subscriptions: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ending subscriptions: %w", err)
	}
	return out, nil
}

// expiringRule: subscriptions that will not renew by themselves ending
// within ExpiringDays.
func (a *Alerts) expiringRule(ctx context.Context, now time.Time, _ settings) ([]Alert, error) {
	subs, err := a.endingSubscriptions(ctx, now, now.Add(time.Duration(a.cfg.ExpiringDays)*24*time.Hour))
	if err != nil {
		return nil, err
	}
	var out []Alert
	for _, s := range subs {
		if s.status == "expired" {
			continue
		}
		out = append(out, Alert{ResellerID: s.reseller, OrgID: s.org, Period: s.periodEnd.Format(timeKey), Severity: "warning",
			Title:   fmt.Sprintf("Subscription (%s, %s) expires on %s", s.plan, s.status, s.periodEnd.Format(time.DateOnly)),
			Details: map[string]any{"plan": s.plan, "status": s.status, "period_end": s.periodEnd}})
	}
	return out, nil
}

// expiredRule: subscriptions that ended without renewal within the
// payment lookback.
func (a *Alerts) expiredRule(ctx context.Context, now time.Time, _ settings) ([]Alert, error) {
	subs, err := a.endingSubscriptions(ctx, now.Add(-a.cfg.PaymentLookback), now.Add(time.Duration(a.cfg.ExpiringDays)*24*time.Hour))
	if err != nil {
		return nil, err
	}
	var out []Alert
	for _, s := range subs {
		if s.periodEnd.After(now) && s.status != "expired" {
			continue
		}
		out = append(out, Alert{ResellerID: s.reseller, OrgID: s.org, Period: s.periodEnd.Format(timeKey), Severity: "critical",
			Title:   fmt.Sprintf("Subscription (%s) expired on %s", s.plan, s.periodEnd.Format(time.DateOnly)),
			Details: map[string]any{"plan": s.plan, "status": s.status, "period_end": s.periodEnd}})
	}
	return out, nil
}

// hourSeries is one organization's finished jobs in the evaluated hour
// (index 0) and the same hour of the week 1..N weeks before; known[k] is
// false for weeks before the organization's first job in the scanned range
// (a zero there means "not a customer yet", not "quiet").
type hourSeries struct {
	reseller, org     string
	completed, failed []float64
	known             []bool
}

// hourWindowEnd is the end of the hour evaluated at now: the last complete
// 15-minute bucket boundary.
func hourWindowEnd(now time.Time) time.Time { return now.Truncate(15 * time.Minute) }

func (a *Alerts) hourSeries(ctx context.Context, end time.Time) ([]hourSeries, error) {
	weeks := a.cfg.Spike.Weeks
	from := end.Add(-time.Duration(weeks)*7*24*time.Hour - time.Hour)
	first := map[[2]string]time.Time{}
	frows, err := a.conn.Query(ctx, firstSeenSQL, from, end)
	if err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	defer frows.Close()
	for frows.Next() {
		var r, o string
		var t time.Time
		if err := frows.Scan(&r, &o, &t); err != nil {
			return nil, fmt.Errorf("first seen: %w", err)
		}
		first[[2]string{r, o}] = t
	}
	if err := frows.Err(); err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	rows, err := a.conn.Query(ctx, hourOfWeekSQL, end.Unix(), from, end, end.Unix())
	if err != nil {
		return nil, fmt.Errorf("hour of week: %w", err)
	}
	defer rows.Close()
	idx := map[[2]string]*hourSeries{}
	var out []*hourSeries
	for rows.Next() {
		var r, o string
		var w int64
		var c, f uint64
		if err := rows.Scan(&r, &o, &w, &c, &f); err != nil {
			return nil, fmt.Errorf("hour of week: %w", err)
		}
		if w < 0 || w > int64(weeks) {
			continue
		}
		k := [2]string{r, o}
		s := idx[k]
		if s == nil {
			s = &hourSeries{reseller: r, org: o, completed: make([]float64, weeks+1), failed: make([]float64, weeks+1),
				known: make([]bool, weeks+1)}
			for i := range s.known {
				// Known if the organization had a job before this week's hour ended.
				s.known[i] = first[k].Before(end.Add(-time.Duration(i) * 7 * 24 * time.Hour))
			}
			idx[k] = s
			out = append(out, s)
		}
		s.completed[w], s.failed[w] = float64(c), float64(f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hour of week: %w", err)
	}
	res := make([]hourSeries, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res, nil
}

func (a *Alerts) hourRule(name string) func(ctx context.Context, now time.Time, st settings) ([]Alert, error) {
	return func(ctx context.Context, now time.Time, st settings) ([]Alert, error) {
		end := hourWindowEnd(now)
		var latest time.Time
		if err := a.conn.QueryRow(ctx, latestBucketSQL, end.Add(-30*time.Minute), now).Scan(&latest); err != nil {
			return nil, fmt.Errorf("latest bucket: %w", err)
		}
		if latest.Before(end.Add(-15 * time.Minute)) {
			// No organization has a job in the window's last bucket: the
			// pipeline is behind (or replaying), not every customer quiet.
			return nil, errNotReady
		}
		series, err := memoized(a, "hour series", now, func() ([]hourSeries, error) { return a.hourSeries(ctx, end) })
		if err != nil {
			return nil, err
		}
		var out []Alert
		for _, s := range series {
			if al, ok := hourFinding(name, s, end, st.of(s.reseller).Spike); ok {
				out = append(out, al)
			}
		}
		return out, nil
	}
}

// hourFinding decides one organization's spike, drop or failure-rate alert
// for the hour ending at end. The baseline is the median of the same hour
// of the week in previous weeks (a daily or weekly cycle is its own
// baseline); the robust spread is 1.4826 × MAD, at least 1 job.
func hourFinding(name string, s hourSeries, end time.Time, c SpikeConfig) (Alert, bool) {
	finished := make([]float64, len(s.completed))
	var base []float64
	for i := range finished {
		finished[i] = s.completed[i] + s.failed[i]
		if i > 0 && (s.known == nil || s.known[i]) {
			base = append(base, finished[i])
		}
	}
	if len(base) == 0 {
		return Alert{}, false
	}
	cur := finished[0]
	med, mad := medianMAD(base)
	scale := math.Max(1.4826*mad, 1)
	al := Alert{ResellerID: s.reseller, OrgID: s.org, Period: end.Add(-time.Second).Truncate(time.Hour).Format(hourKey),
		Details: map[string]any{"window_start": end.Add(-time.Hour), "window_end": end, "jobs": cur,
			"baseline_median": med, "baseline_mad": mad, "baseline_weeks": len(base)}}
	switch name {
	case RuleSpike:
		if cur < float64(c.MinJobs) || cur < c.MinRatio*med || cur < med+c.Z*scale {
			return Alert{}, false
		}
		al.Severity = "warning"
		al.Title = fmt.Sprintf("Usage spike: %.0f jobs in the last hour, usually %.0f", cur, med)
	case RuleDrop:
		if med < float64(c.MinJobs) || cur > c.DropRatio*med || cur > med-c.Z*scale {
			return Alert{}, false
		}
		al.Severity = "warning"
		al.Title = fmt.Sprintf("Usage drop: %.0f jobs in the last hour, usually %.0f", cur, med)
	case RuleFailureRate:
		failed := s.failed[0]
		if failed < float64(c.MinFailed) || cur == 0 {
			return Alert{}, false
		}
		var bf, bn float64
		for i := 1; i < len(finished); i++ {
			if s.known != nil && !s.known[i] {
				continue
			}
			bf += s.failed[i]
			bn += finished[i]
		}
		rate, baseRate := failed/cur, 0.0
		if bn > 0 {
			baseRate = bf / bn
		}
		if rate < baseRate+c.MinFailureRateIncrease || rate < 2*baseRate {
			return Alert{}, false
		}
		al.Severity = "critical"
		al.Title = fmt.Sprintf("Failure rate %.0f%% in the last hour (%.0f of %.0f jobs), usually %.0f%%", rate*100, failed, cur, baseRate*100)
		al.Details["failed"], al.Details["failure_rate"], al.Details["baseline_failure_rate"] = failed, round2(rate), round2(baseRate)
	default:
		return Alert{}, false
	}
	return al, true
}

// medianMAD returns the median and the median absolute deviation.
func medianMAD(xs []float64) (med, mad float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	med = median(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - med)
	}
	return med, median(dev)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func minor(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}
