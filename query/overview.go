package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
)

// metric is a number now and in the previous period.
type metric struct {
	Value    float64  `json:"value"`
	Previous float64  `json:"previous"`
	Change   float64  `json:"change"`
	ChangePc *float64 `json:"change_pct"` // null when the previous value is 0
}

func newMetric(cur, prev float64) metric {
	m := metric{Value: cur, Previous: prev, Change: round(cur-prev, 3)}
	if prev != 0 {
		pc := round((cur-prev)/prev*100, 1)
		m.ChangePc = &pc
	}
	return m
}

// revenue is MRR in one currency.
type revenue struct {
	Currency string `json:"currency"`
	metric
}

type overviewResponse struct {
	Reseller string `json:"reseller"`
	TZ       string `json:"tz"`
	// Period is this month so far in tz; PreviousPeriod is the same span
	// of the previous month (month to date against month to date).
	Period              period    `json:"period"`
	PreviousPeriod      period    `json:"previous_period"`
	Organizations       metric    `json:"organizations"`
	ActiveSubscriptions metric    `json:"active_subscriptions"`
	Users               metric    `json:"users"`
	UsageMinutes        metric    `json:"usage_minutes"`
	Revenue             []revenue `json:"revenue,omitempty"`
}

type period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

func (q *Query) overview(c *fiber.Ctx) error {
	s := scopeOf(c)
	ctx := c.UserContext()
	now := q.now()
	monthStart := startOfMonth(now, s.loc)
	prevStart := monthStart.AddDate(0, -1, 0)
	prevEnd := prevStart.Add(now.Sub(monthStart))
	if prevEnd.After(monthStart) {
		prevEnd = monthStart
	}
	resp := overviewResponse{
		Reseller: s.reseller, TZ: s.tz,
		Period:         period{From: monthStart, To: now.In(s.loc)},
		PreviousPeriod: period{From: prevStart, To: prevEnd},
	}

	var total, before uint64
	if err := q.conn.QueryRow(ctx, orgCountsSQL, monthStart.UTC(), s.reseller).Scan(&total, &before); err != nil {
		return fmt.Errorf("overview organizations: %w", err)
	}
	resp.Organizations = newMetric(float64(total), float64(before))

	subsNow, err := q.subscriptionsAsOf(ctx, s.reseller, now.Add(time.Second))
	if err != nil {
		return err
	}
	subsPrev, err := q.subscriptionsAsOf(ctx, s.reseller, monthStart)
	if err != nil {
		return err
	}
	resp.ActiveSubscriptions = newMetric(float64(subsNow.active), float64(subsPrev.active))
	if s.revenue {
		resp.Revenue = []revenue{}
		for _, cur := range unionKeys(subsNow.mrr, subsPrev.mrr) {
			resp.Revenue = append(resp.Revenue, revenue{Currency: cur, metric: newMetric(float64(subsNow.mrr[cur]), float64(subsPrev.mrr[cur]))})
		}
	}

	usersNow, err := q.usersAsOf(ctx, s.reseller, now.Add(time.Second))
	if err != nil {
		return err
	}
	usersPrev, err := q.usersAsOf(ctx, s.reseller, monthStart)
	if err != nil {
		return err
	}
	resp.Users = newMetric(float64(usersNow), float64(usersPrev))

	minNow, err := q.minutes(ctx, s.reseller, monthStart, now)
	if err != nil {
		return err
	}
	minPrev, err := q.minutes(ctx, s.reseller, prevStart, prevEnd)
	if err != nil {
		return err
	}
	resp.UsageMinutes = newMetric(minNow, minPrev)
	return c.JSON(resp)
}

type subsState struct {
	active uint64
	mrr    map[string]int64
}

func (q *Query) subscriptionsAsOf(ctx context.Context, reseller string, cutoff time.Time) (subsState, error) {
	st := subsState{mrr: map[string]int64{}}
	rows, err := q.conn.Query(ctx, subscriptionsAsOfSQL, reseller, cutoff.UTC())
	if err != nil {
		return st, fmt.Errorf("overview subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cur string
		var n uint64
		var mrr int64
		if err := rows.Scan(&cur, &n, &mrr); err != nil {
			return st, fmt.Errorf("overview subscriptions: %w", err)
		}
		st.active += n
		st.mrr[cur] += mrr
	}
	return st, rows.Err()
}

func (q *Query) usersAsOf(ctx context.Context, reseller string, cutoff time.Time) (uint64, error) {
	var n uint64
	if err := q.conn.QueryRow(ctx, usersAsOfSQL, reseller, cutoff.UTC()).Scan(&n); err != nil {
		return 0, fmt.Errorf("overview users: %w", err)
	}
	return n, nil
}

// minutes is the usage of the 15-minute buckets that start in [from, to).
func (q *Query) minutes(ctx context.Context, reseller string, from, to time.Time) (float64, error) {
	var ms uint64
	if err := q.conn.QueryRow(ctx, minutesSQL, reseller, from.UTC(), to.UTC()).Scan(&ms); err != nil {
		return 0, fmt.Errorf("usage minutes: %w", err)
	}
	return msToMinutes(ms), nil
}

func msToMinutes(ms uint64) float64 { return round(float64(ms)/60000, 3) }

func round(f float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(f*p) / p
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}
