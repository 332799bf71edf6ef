package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"
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

	// The four parts are independent: run them at once.
	var (
		total, before       uint64
		subsNow, subsPrev   subsState
		usersNow, usersPrev uint64
		minNow, minPrev     float64
		g, gctx             = errgroup.WithContext(ctx)
		nowCut              = now.Add(time.Second)
	)
	g.Go(func() error {
		if err := q.conn.QueryRow(gctx, orgCountsSQL, monthStart.UTC(), s.reseller).Scan(&total, &before); err != nil {
			return fmt.Errorf("overview organizations: %w", err)
		}
		return nil
	})
	g.Go(func() (err error) {
		subsNow, subsPrev, err = q.subscriptionsAsOf(gctx, s.reseller, nowCut, monthStart)
		return err
	})
	g.Go(func() error {
		a, b := nowCut.UTC(), monthStart.UTC()
		if err := q.conn.QueryRow(gctx, usersAsOfSQL, a, b, s.reseller, a, b).Scan(&usersNow, &usersPrev); err != nil {
			return fmt.Errorf("overview users: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		var msNow, msPrev uint64
		if err := q.conn.QueryRow(gctx, minutesSQL, monthStart.UTC(), now.UTC(), prevStart.UTC(), prevEnd.UTC(),
			s.reseller, prevStart.UTC(), now.UTC()).Scan(&msNow, &msPrev); err != nil {
			return fmt.Errorf("overview minutes: %w", err)
		}
		minNow, minPrev = msToMinutes(msNow), msToMinutes(msPrev)
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	resp.Organizations = newMetric(float64(total), float64(before))
	resp.ActiveSubscriptions = newMetric(float64(subsNow.active), float64(subsPrev.active))
	if s.revenue {
		resp.Revenue = []revenue{}
		for _, cur := range unionKeys(subsNow.mrr, subsPrev.mrr) {
			resp.Revenue = append(resp.Revenue, revenue{Currency: cur, metric: newMetric(float64(subsNow.mrr[cur]), float64(subsPrev.mrr[cur]))})
		}
	}
	resp.Users = newMetric(float64(usersNow), float64(usersPrev))
	resp.UsageMinutes = newMetric(minNow, minPrev)
	return c.JSON(resp)
}

type subsState struct {
	active uint64
	mrr    map[string]int64
}

// subscriptionsAsOf is the active paid subscriptions just before two
// cutoffs.
func (q *Query) subscriptionsAsOf(ctx context.Context, reseller string, cut0, cut1 time.Time) (subsState, subsState, error) {
	st := [2]subsState{{mrr: map[string]int64{}}, {mrr: map[string]int64{}}}
	a, b := cut0.UTC(), cut1.UTC()
	rows, err := q.conn.Query(ctx, subscriptionsAsOfSQL, a, a, a, b, b, b, reseller, a, b)
	if err != nil {
		return st[0], st[1], fmt.Errorf("overview subscriptions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w uint8
		var cur string
		var n uint64
		var mrr int64
		if err := rows.Scan(&w, &cur, &n, &mrr); err != nil {
			return st[0], st[1], fmt.Errorf("overview subscriptions: %w", err)
		}
		st[w].active += n
		st[w].mrr[cur] += mrr
	}
	return st[0], st[1], rows.Err()
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
