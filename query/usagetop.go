package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"
)

// rankFirst is whether a usage request ranks its groups before reading
// their series (usageTop): with ?top and a group-by on organization when
// the reseller has more than rankFirstOrgs organizations (orgs: the
// reseller's, or the ?org filter's when given). Each organization would
// otherwise get a series of its own, most of them summed into "others".
func rankFirst(p usageParams, orgs int) bool {
	if len(p.orgs) > 0 {
		orgs = min(orgs, len(p.orgs))
	}
	return p.top > 0 && slices.Contains(p.groupBy, "organization") && orgs > rankFirstOrgs
}

// rankFirstOrgs: measured over 13 months by organization, top 10, in UTC
// and Europe/Amsterdam (ClickHouse CPU per request, reading every series
// → ranking first). The largest benchmark reseller (2,778 organizations):
// 22–39 → 30 and 69 → 71 ms without distinct users, 196–284 → 54 and
// 300–352 → 98–101 ms with them. One of 876: 16 → 36, 70 → 96, 98 → 64
// and 134 → 128 ms. Below about a thousand organizations the three
// queries of ranking first cost more than the one they save.
const rankFirstOrgs = 1000

// orgCountTTL is how long a reseller's organization count is cached for
// rankFirst.
const orgCountTTL = time.Minute

type orgCount struct {
	n       int
	expires time.Time
}

// orgCount is the reseller's number of organizations, cached for
// orgCountTTL.
func (q *Query) orgCount(ctx context.Context, reseller string) (int, error) {
	now := time.Now()
	q.orgCountsMu.Lock()
	c, ok := q.orgCounts[reseller]
	q.orgCountsMu.Unlock()
	if ok && now.Before(c.expires) {
		return c.n, nil
	}
	var n uint64
	if err := q.conn.QueryRow(ctx, resellerSQL, reseller).Scan(&n); err != nil {
		return 0, fmt.Errorf("count organizations: %w", err)
	}
	q.orgCountsMu.Lock()
	q.orgCounts[reseller] = orgCount{int(n), now.Add(orgCountTTL)}
	q.orgCountsMu.Unlock()
	return int(n), nil
}

// othersKey stands for "others" in the usageData of usageTop; no group
// value holds a NUL.
var othersKey = groupKey{"\x00", "\x00"}

// usageTop runs a rankFirst request in two steps. First the groups' sums
// over the range rank them. Then, at once, the first p.top groups' series
// and totals (distinct users too), with each grouped dimension filtered to
// their values, and the series of all groups together, from which
// "others" is what the kept groups leave. Others' totals are the sum of
// the other groups' from the first step; others' distinct users are
// unknown, as when summed.
func (q *Query) usageTop(ctx context.Context, s scope, p usageParams) (usageData, error) {
	rank := usageBase(s, p)
	rank.users = false
	totals := map[groupKey]agg{}
	var order []groupKey
	if _, err := q.scanUsage(ctx, rank, len(p.groupBy), func(_ uint32, k groupKey, a agg) {
		totals[k] = a
		order = append(order, k)
	}); err != nil {
		return usageData{}, fmt.Errorf("rank groups: %w", err)
	}
	rankGroups(order, totals)
	if len(order) == 0 {
		return usageData{totals: totals}, nil
	}
	keep, rest := order, []groupKey(nil)
	if len(order) > p.top {
		keep, rest = order[:p.top], order[p.top:]
	}

	kept := p
	kept.top = 0
	for i, dim := range p.groupBy {
		var values []string
		for _, k := range keep {
			if !slices.Contains(values, k[i]) {
				values = append(values, k[i])
			}
		}
		switch dim {
		case "organization":
			kept.orgs = values
		case "model":
			kept.models = values
		case "language":
			kept.languages = values
		}
	}
	all := p
	all.top, all.groupBy = 0, nil
	all.metrics = slices.DeleteFunc(slices.Clone(p.metrics), func(m string) bool { return m == "distinct_users" })

	var kd, ad usageData
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		kd, err = q.usageData(gctx, s, kept)
		return err
	})
	if len(rest) > 0 {
		g.Go(func() (err error) {
			ad, err = q.usageData(gctx, s, all)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return usageData{}, err
	}

	d := usageData{order: slices.Clone(keep), totals: map[groupKey]agg{}}
	inKeep := map[groupKey]bool{}
	for _, k := range keep {
		inKeep[k] = true
		d.totals[k] = kd.totals[k]
	}
	keptSum := map[uint32]agg{}
	for _, r := range kd.rows {
		// Filtering each dimension alone also finds pairs of kept values
		// that are not a kept pair.
		if !inKeep[r.k] {
			continue
		}
		d.rows = append(d.rows, r)
		t := keptSum[r.key]
		t.add(r.a)
		keptSum[r.key] = t
	}
	if len(rest) == 0 {
		return d, nil
	}
	var others agg
	for _, k := range rest {
		others.add(totals[k])
	}
	d.order = append(d.order, othersKey)
	d.totals[othersKey] = others
	for _, r := range ad.rows {
		d.rows = append(d.rows, timedRow{r.key, othersKey, r.a.minus(keptSum[r.key])})
	}
	return d, nil
}

// minus is a's sums less b's, each at least zero (the two can come from
// queries that saw different inserts); distinct users are unknown.
func (a agg) minus(b agg) agg {
	sub := func(x, y uint64) uint64 {
		if x < y {
			return 0
		}
		return x - y
	}
	return agg{
		mediaMS: sub(a.mediaMS, b.mediaMS), completed: sub(a.completed, b.completed),
		failed: sub(a.failed, b.failed), processingMS: sub(a.processingMS, b.processingMS),
		usersUnknown: true,
	}
}
