package query

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/sync/errgroup"

	"github.com/tallyhq/tally/schemas"
)

type subscription struct {
	Plan         string    `json:"plan"`
	Status       string    `json:"status"`
	QuotaMinutes uint64    `json:"quota_minutes"`
	PriceMinor   int64     `json:"price_minor,omitempty"`
	Currency     string    `json:"currency,omitempty"`
	PeriodStart  time.Time `json:"period_start"`
	PeriodEnd    time.Time `json:"period_end"`
}

type orgSummary struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Plan         string    `json:"plan"`
	Status       string    `json:"status"`
	Users        uint64    `json:"users"`
	UsageMinutes float64   `json:"usage_minutes"`
	QuotaMinutes uint64    `json:"quota_minutes"`
	QuotaShare   *float64  `json:"quota_share"` // usage / quota; null without a quota
	CreatedAt    time.Time `json:"created_at"`
}

type orgsResponse struct {
	Organizations []orgSummary `json:"organizations"`
	// Period is the current month in tz, the span of usage_minutes.
	Period   period `json:"period"`
	Page     int    `json:"page"`
	PageSize int    `json:"page_size"`
	Total    int    `json:"total"`
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quotaShare is usage / quota rounded to 4 digits (nil without a quota),
// computed in integers from the usage as the API rounds it (thousandths of
// a minute) so that the quota sort (orgSorts) orders by exactly this value.
func quotaShare(ms, quota uint64) *float64 {
	if quota == 0 {
		return nil
	}
	share := float64(quotaKey(ms, quota)) / 10000
	return &share
}

// usageKey is usage as the API rounds it: thousandths of a minute.
func usageKey(ms uint64) uint64 { return (ms + 30) / 60 }

// quotaKey is usage / quota in ten-thousandths, rounded from usageKey;
// quota must not be 0.
func quotaKey(ms, quota uint64) uint64 {
	return (20*usageKey(ms) + quota) / (2 * quota)
}

var orgStatuses = []string{schemas.OrgStatusActive, schemas.OrgStatusTrial, schemas.OrgStatusSuspended}

// orgRow is one organization of the list with what its sorts compare.
type orgRow struct {
	orgSummary
	nameKey string // lowerUTF8(name) from ClickHouse
	ms      uint64 // usage in the current month
}

// orgSorts compare two organizations by each sort key, ascending. Names
// compare lower case; plan and status byte by byte; usage as the API
// rounds it; quota as quotaShare rounds it. Ties go by id, in the
// request's direction too (see sortOrgs).
var orgSorts = map[string]func(a, b *orgRow) int{
	"name":    func(a, b *orgRow) int { return strings.Compare(a.nameKey, b.nameKey) },
	"usage":   func(a, b *orgRow) int { return cmp.Compare(usageKey(a.ms), usageKey(b.ms)) },
	"created": func(a, b *orgRow) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"users":   func(a, b *orgRow) int { return cmp.Compare(a.Users, b.Users) },
	"plan":    func(a, b *orgRow) int { return strings.Compare(a.Plan, b.Plan) },
	"status":  func(a, b *orgRow) int { return strings.Compare(a.Status, b.Status) },
	"quota": func(a, b *orgRow) int {
		return cmp.Compare(quotaKey(a.ms, max(a.QuotaMinutes, 1)), quotaKey(b.ms, max(b.QuotaMinutes, 1)))
	},
}

// sortOrgs orders rows by key (a key of orgSorts), then by id, both in
// the given direction; for the quota sort, organizations without a quota
// come last in both directions.
func sortOrgs(rows []orgRow, key string, desc bool) {
	by := orgSorts[key]
	slices.SortFunc(rows, func(a, b orgRow) int {
		if az, bz := a.QuotaMinutes == 0, b.QuotaMinutes == 0; key == "quota" && az != bz {
			if az {
				return 1
			}
			return -1
		}
		c := by(&a, &b)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if desc {
			return -c
		}
		return c
	})
}

// organizations lists the reseller's organizations: ClickHouse filters
// them and sums their usage, users and quotas in four flat queries run
// at once (see orgsQuery); they are joined, sorted and paged here.
func (q *Query) organizations(c *fiber.Ctx) error {
	s := scopeOf(c)
	sortBy, order := c.Query("sort", "name"), c.Query("order", "asc")
	if _, ok := orgSorts[sortBy]; !ok {
		return badParam("sort", "unknown sort %q: want name, usage, created, users, plan, status or quota", sortBy)
	}
	if order != "asc" && order != "desc" {
		return badParam("order", "unknown order %q: want asc or desc", order)
	}
	page, err := intParam(c, "page", 1, 1, 1_000_000)
	if err != nil {
		return err
	}
	size, err := intParam(c, "page_size", 25, 1, 200)
	if err != nil {
		return err
	}
	statuses := listParam(c, "status")
	for _, st := range statuses {
		if !slices.Contains(orgStatuses, st) {
			return badParam("status", "unknown status %q: want active, trial or suspended", st)
		}
	}
	plans := listParam(c, "plan")
	needle := strings.ToLower(strings.TrimSpace(c.Query("q")))

	now := q.now()
	monthStart := startOfMonth(now, s.loc)
	oq := orgsQuery{reseller: s.reseller, needle: needle, plans: plans, statuses: statuses,
		usage: usageQuery{reseller: s.reseller, from: monthStart.UTC(), to: now.UTC(), groupBy: []string{"organization"}}}
	oq.usage.months, oq.usage.days = wholeSpans(monthStart, now, "month", s.loc)
	oq.usage.months, oq.usage.days, oq.usage.minus = tailMonth(oq.usage.from, oq.usage.to, now, oq.usage.months, oq.usage.days)
	rows, err := q.orgList(c.UserContext(), oq)
	if err != nil {
		return err
	}
	sortOrgs(rows, sortBy, order == "desc")
	resp := orgsResponse{Organizations: []orgSummary{}, Period: period{From: monthStart, To: now.In(s.loc)}, Page: page, PageSize: size, Total: len(rows)}
	for i := (page - 1) * size; i < min(page*size, len(rows)); i++ {
		resp.Organizations = append(resp.Organizations, rows[i].orgSummary)
	}
	return c.JSON(resp)
}

// orgList runs oq: the organizations passing its filters, each with its
// active users, quota and usage.
func (q *Query) orgList(ctx context.Context, oq orgsQuery) ([]orgRow, error) {
	var (
		orgs   []orgRow
		users  = map[string]uint64{}
		quotas = map[string]uint64{}
		usage  = map[string]uint64{}
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		sql, args := oq.filtered()
		rows, err := q.conn.Query(gctx, sql, args...)
		if err != nil {
			return fmt.Errorf("organizations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var o orgRow
			if err := rows.Scan(&o.ID, &o.Name, &o.Plan, &o.Status, &o.CreatedAt, &o.nameKey); err != nil {
				return fmt.Errorf("organizations: %w", err)
			}
			o.CreatedAt = o.CreatedAt.UTC()
			orgs = append(orgs, o)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("organizations: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := q.scanCounts(gctx, userCountsSQL, func(id string, n uint64) { users[id] = n }, oq.reseller); err != nil {
			return fmt.Errorf("organization users: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := q.scanCounts(gctx, quotasSQL, func(id string, n uint64) { quotas[id] = n }, oq.reseller); err != nil {
			return fmt.Errorf("organization quotas: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		_, err := q.scanUsage(gctx, oq.usage, 1, func(_ uint32, k groupKey, a agg) { usage[k[0]] = a.mediaMS })
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i := range orgs {
		o := &orgs[i]
		o.Users, o.QuotaMinutes, o.ms = users[o.ID], quotas[o.ID], usage[o.ID]
		o.UsageMinutes = msToMinutes(o.ms)
		o.QuotaShare = quotaShare(o.ms, o.QuotaMinutes)
	}
	return orgs, nil
}

// orgSummaries is every organization of a reseller with its usage in
// [from, to) (the financial report's rows), by id.
func (q *Query) orgSummaries(ctx context.Context, reseller string, from, to time.Time) ([]orgSummary, error) {
	uq := usageQuery{reseller: reseller, from: from.UTC(), to: to.UTC(), groupBy: []string{"organization"}}
	uq.months, uq.days = wholeSpans(from, to, "", time.UTC)
	rows, err := q.orgList(ctx, orgsQuery{reseller: reseller, usage: uq})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b orgRow) int { return strings.Compare(a.ID, b.ID) })
	out := make([]orgSummary, len(rows))
	for i := range rows {
		out[i] = rows[i].orgSummary
	}
	return out, nil
}

func (q *Query) subscriptions(ctx context.Context, sql string, args ...any) (map[string]subscription, error) {
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("subscriptions: %w", err)
	}
	defer rows.Close()
	out := map[string]subscription{}
	for rows.Next() {
		var id string
		var s subscription
		if err := rows.Scan(&id, &s.Plan, &s.Status, &s.QuotaMinutes, &s.PriceMinor, &s.Currency, &s.PeriodStart, &s.PeriodEnd); err != nil {
			return nil, fmt.Errorf("subscriptions: %w", err)
		}
		s.PeriodStart, s.PeriodEnd = s.PeriodStart.UTC(), s.PeriodEnd.UTC()
		out[id] = s
	}
	return out, rows.Err()
}

func (q *Query) scanCounts(ctx context.Context, sql string, fn func(id string, n uint64), args ...any) error {
	rows, err := q.conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		fn(id, n)
	}
	return rows.Err()
}

type orgUser struct {
	UserID  string    `json:"user_id"`
	Role    string    `json:"role"`
	AddedAt time.Time `json:"added_at"`
}

type breakdown struct {
	Name    string  `json:"name"`
	Minutes float64 `json:"minutes"`
	Jobs    uint64  `json:"jobs_completed"`
}

// orgAlertsLimit is how many alerts an organization's detail holds.
const orgAlertsLimit = 50

type orgDetail struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Plan         string        `json:"plan"`
	Status       string        `json:"status"`
	CreatedAt    time.Time     `json:"created_at"`
	Subscription *subscription `json:"subscription"`
	Users        []orgUser     `json:"users"`
	// Usage is the daily series of the last 30 days in tz; Models and
	// Languages break down the current month.
	Usage     usageResponse `json:"usage"`
	Models    []breakdown   `json:"models"`
	Languages []breakdown   `json:"languages"`
	// Alerts is the organization's latest alerts, newest first, as
	// /v1/alerts?org= lists them (at most orgAlertsLimit).
	Alerts []alertItem `json:"alerts"`
}

func (q *Query) organization(c *fiber.Ctx) error {
	s := scopeOf(c)
	ctx := c.UserContext()
	id := c.Params("id")
	if !schemas.ValidToken(id) {
		return errOrgNotFound
	}
	var d orgDetail
	err := q.conn.QueryRow(ctx, orgSQL, s.reseller, id).Scan(&d.ID, &d.Name, &d.Plan, &d.Status, &d.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return errOrgNotFound
	}
	if err != nil {
		return fmt.Errorf("organization: %w", err)
	}
	d.CreatedAt = d.CreatedAt.UTC()
	now := q.now()
	to := nextPeriod(floorPeriod(now, "day", s.loc), "day", s.loc)
	from := to.AddDate(0, 0, -30)
	monthStart := startOfMonth(now, s.loc)
	// The parts are independent: run them at once.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		subs, err := q.subscriptions(gctx, subSQL, s.reseller, id)
		if sub, ok := subs[id]; ok {
			d.Subscription = &sub
		}
		return err
	})
	g.Go(func() (err error) {
		d.Users, err = q.orgUsers(gctx, s.reseller, id)
		return err
	})
	g.Go(func() (err error) {
		d.Usage, err = q.runUsage(gctx, s, usageParams{
			metrics: []string{"minutes", "jobs_completed", "jobs_failed", "distinct_users"}, granularity: "day",
			from: floorPeriod(from, "day", s.loc), to: to, orgs: []string{id},
		})
		return err
	})
	g.Go(func() (err error) {
		d.Models, err = q.breakdown(gctx, s, id, "model", monthStart, to)
		return err
	})
	g.Go(func() (err error) {
		d.Languages, err = q.breakdown(gctx, s, id, "language", monthStart, to)
		return err
	})
	g.Go(func() (err error) {
		d.Alerts, err = q.readAlerts(gctx, s, alertsQuery{reseller: s.reseller, orgs: []string{id}, limit: orgAlertsLimit})
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return c.JSON(d)
}

func (q *Query) orgUsers(ctx context.Context, reseller, id string) ([]orgUser, error) {
	users := []orgUser{}
	rows, err := q.conn.Query(ctx, orgUsersSQL, reseller, id)
	if err != nil {
		return nil, fmt.Errorf("organization users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u orgUser
		if err := rows.Scan(&u.UserID, &u.Role, &u.AddedAt); err != nil {
			return nil, fmt.Errorf("organization users: %w", err)
		}
		u.AddedAt = u.AddedAt.UTC()
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("organization users: %w", err)
	}
	return users, nil
}

// breakdown is the usage of one organization by one dimension, most minutes first.
func (q *Query) breakdown(ctx context.Context, s scope, org, dim string, from, to time.Time) ([]breakdown, error) {
	out := []breakdown{}
	uq := usageQuery{reseller: s.reseller, from: from.UTC(), to: to.UTC(), groupBy: []string{dim}, orgs: []string{org}}
	_, err := q.scanUsage(ctx, uq, 1, func(_ uint32, k groupKey, a agg) {
		out = append(out, breakdown{Name: k[0], Minutes: msToMinutes(a.mediaMS), Jobs: a.completed})
	})
	slices.SortStableFunc(out, func(a, b breakdown) int {
		if d := cmpFloat(b.Minutes, a.Minutes); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, err
}
