package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyhq/tally/query"
)

// Routes of the query benchmark, in report order.
const (
	routeOverview  = "overview"
	routeOrgs      = "organizations"
	routeActivity  = "activity"
	routeUsageDay  = "usage_month_daily"
	routeBreakdown = "usage_13m_by_org"
	routeOrg       = "organization_detail"
)

var queryRoutes = []struct {
	key, name string
	weight    int
}{
	{routeOverview, "GET /v1/overview", 15},
	{routeOrgs, "GET /v1/organizations (every sort and order, search, status and plan filters, pages)", 25},
	{routeActivity, "GET /v1/activity (filters, cursor pages)", 25},
	{routeUsageDay, "GET /v1/usage one month by day", 15},
	{routeBreakdown, "GET /v1/usage 13 months by organization (by month, top 10)", 8},
	{routeOrg, "GET /v1/organizations/{id}", 12},
}

// RunQuery benchmarks the dashboard API: Clients concurrent clients send a
// mix of dashboard requests for Duration to the query stage serving the
// dataset, and the report has each route's p50/p95/p99 against the targets.
func RunQuery(ctx context.Context, cfg ReadConfig, progress io.Writer) (Report, error) {
	e, err := setupRead(ctx, cfg, progress)
	if err != nil {
		return Report{}, err
	}
	rep, runErr := e.runQuery(ctx)
	closeErr := e.close()
	rep.Elapsed = time.Since(e.began)
	if runErr != nil {
		return rep, runErr
	}
	return rep, closeErr
}

type sample struct {
	route, variant string
	d              time.Duration
	status         int
}

// queryClient is one simulated dashboard user.
type queryClient struct {
	rnd     *rand.Rand
	http    *http.Client
	base    string
	keys    map[string]string // reseller -> key
	orgs    map[string][]*datasetOrg
	rs      []string
	end     time.Time
	samples []sample
	errs    []string
}

func (e *readEnv) runQuery(ctx context.Context) (Report, error) {
	cfg := e.cfg
	rep := Report{Machine: e.machine()}
	conn := e.ds.Conn
	end := cfg.Dataset.End
	keys := map[string]string{}
	orgs := map[string][]*datasetOrg{}
	for i := range e.ds.Orgs {
		o := &e.ds.Orgs[i]
		orgs[o.reseller] = append(orgs[o.reseller], o)
	}
	var resellers []string
	for r := range orgs {
		resellers = append(resellers, r)
		_, secret, err := query.CreateKey(ctx, conn, query.KeySpec{Name: "bench " + r, ResellerID: r, Revenue: true}, time.Now())
		if err != nil {
			return rep, err
		}
		keys[r] = secret
	}
	slices.Sort(resellers)

	q, err := query.New(query.Config{Listen: "127.0.0.1:0", Now: func() time.Time { return end }}, conn, e.log, nil)
	if err != nil {
		return rep, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, fmt.Errorf("listen: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- q.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}
	defer tr.CloseIdleConnections()

	e.logf("query stage at %s; %d clients (mean think time %s), %s warm-up, %s measured", base, cfg.Clients, cfg.Think, cfg.Warmup, cfg.Duration)
	meter := newCPUMeter("", map[string]int{"bench process (query stage + clients)": pidSelf(), "clickhouse-server": e.chPID})
	var (
		wg       sync.WaitGroup
		clients  = make([]*queryClient, cfg.Clients)
		measured = time.Now().Add(cfg.Warmup)
		deadline = measured.Add(cfg.Duration)
	)
	for i := range clients {
		c := &queryClient{rnd: rand.New(rand.NewPCG(uint64(i), 42)), http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
			base: base, keys: keys, orgs: orgs, rs: resellers, end: end}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Think > 0 {
				// Users arrive spread over the first pause.
				time.Sleep(time.Duration(c.rnd.Float64() * float64(cfg.Think)))
			}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				c.next(ctx, measured)
				if cfg.Think > 0 {
					time.Sleep(min(time.Duration(c.rnd.ExpFloat64()*float64(cfg.Think)), 10*cfg.Think, time.Until(deadline)))
				}
			}
		}()
	}
	wg.Wait()
	cpu := meter.summary(0)
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	by := map[string][]time.Duration{}
	variants := map[string]map[string][]time.Duration{}
	var total, failed int
	var errs []string
	for _, c := range clients {
		for _, s := range c.samples {
			total++
			if s.status != http.StatusOK {
				failed++
				continue
			}
			by[s.route] = append(by[s.route], s.d)
			if variants[s.route] == nil {
				variants[s.route] = map[string][]time.Duration{}
			}
			variants[s.route][s.variant] = append(variants[s.route][s.variant], s.d)
		}
		errs = append(errs, c.errs...)
	}
	if failed > 0 {
		return rep, fmt.Errorf("%d of %d requests failed, e.g. %s", failed, total, strings.Join(errs[:min(3, len(errs))], "; "))
	}
	rate := float64(total) / cfg.Duration.Seconds()
	pause := "each sends its next request as soon as the last one answered (saturation)"
	if cfg.Think > 0 {
		pause = fmt.Sprintf("each pauses %s on average (exponential) between interactions, as a user reading the dashboard", cfg.Think)
	}
	rep.Sizes = e.sizes() + fmt.Sprintf("; %d concurrent clients (%s), %s measured after %s warm-up", cfg.Clients, pause, cfg.Duration, cfg.Warmup)
	for _, r := range queryRoutes {
		ds := by[r.key]
		p50, p95, p99 := pct(ds, 50), pct(ds, 95), pct(ds, 99)
		row := Row{Key: "query_" + r.key, Name: fmt.Sprintf("%s: p99 (p50 %s ms, p95 %s ms; %s req/s)", r.name,
			num(ms(p50)), num(ms(p95)), num(float64(len(ds))/cfg.Duration.Seconds())),
			Kind: Latency, Unit: "ms", Value: ms(p99), Max: ms(cfg.MaxP99)}
		switch r.key {
		case routeBreakdown:
			row.Max = ms(cfg.MaxBreakdownP99)
		case routeOrg:
			row.Kind = Info
		}
		if len(ds) == 0 {
			row.Kind = Info // nothing measured: no verdict
		}
		var vs []string
		for v, d := range variants[r.key] {
			vs = append(vs, fmt.Sprintf("%s: %d, p99 %s ms", v, len(d), num(ms(pct(d, 99)))))
		}
		sort.Strings(vs)
		row.Note = fmt.Sprintf("%d requests; by variant: %s", len(ds), strings.Join(vs, "; "))
		rep.add(row)
	}
	rep.add(Row{Key: "query_rate", Name: fmt.Sprintf("Request rate held by %d clients over the mix", cfg.Clients), Kind: Info,
		Unit: "req/s", Value: rate, Note: fmt.Sprintf("%d requests in %s, none failed. %s", total, cfg.Duration, cpu)})
	return rep, nil
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

var benchZones = []string{"UTC", "UTC", "Europe/Amsterdam", "Asia/Kolkata", "America/New_York"}

// next sends one dashboard interaction (an activity interaction may page
// on with the cursor), recording samples after measured.
func (c *queryClient) next(ctx context.Context, measured time.Time) {
	r := c.rs[c.rnd.IntN(len(c.rs))]
	orgs := c.orgs[r]
	n := c.rnd.IntN(100)
	route := ""
	for _, qr := range queryRoutes {
		if n < qr.weight {
			route = qr.key
			break
		}
		n -= qr.weight
	}
	v := url.Values{}
	tz := benchZones[c.rnd.IntN(len(benchZones))]
	if tz != "UTC" {
		v.Set("tz", tz)
	}
	variant, path := "", ""
	switch route {
	case routeOverview:
		path, variant = "/v1/overview", "tz="+tz
	case routeOrgs:
		path = "/v1/organizations"
		sortBy := []string{"name", "usage", "created", "users"}[c.rnd.IntN(4)]
		order := []string{"asc", "desc"}[c.rnd.IntN(2)]
		v.Set("sort", sortBy)
		v.Set("order", order)
		variant = "sort=" + sortBy
		size := []int{25, 50}[c.rnd.IntN(2)]
		v.Set("page_size", strconv.Itoa(size))
		if c.rnd.IntN(10) < 3 {
			v.Set("page", strconv.Itoa(1+c.rnd.IntN(max(1, len(orgs)/size))))
		}
		switch k := c.rnd.IntN(10); {
		case k < 2:
			o := orgs[c.rnd.IntN(len(orgs))]
			w := strings.Fields(o.name)[c.rnd.IntN(3)]
			v.Set("q", strings.ToLower(w[:min(len(w), 3+c.rnd.IntN(3))]))
			variant += " search"
		case k < 4:
			v.Set("status", []string{"active", "trial", "suspended", "active,trial"}[c.rnd.IntN(4)])
			variant += " status"
		case k < 5:
			v.Set("plan", []string{"starter", "pro", "business,enterprise"}[c.rnd.IntN(3)])
			variant += " plan"
		}
	case routeActivity:
		path, variant = "/v1/activity", "plain"
		switch k := c.rnd.IntN(20); {
		case k < 4:
			v.Set("status", []string{"in_progress", "completed", "failed"}[c.rnd.IntN(3)])
			variant = "status"
		case k < 7:
			v.Set("org", orgs[c.rnd.IntN(len(orgs))].id)
			variant = "org"
		case k < 9:
			v.Set("model", datasetModels[c.rnd.IntN(len(datasetModels))])
			variant = "model"
		}
	case routeUsageDay:
		path, variant = "/v1/usage", "tz="+tz
		back := 0
		if c.rnd.IntN(10) < 3 {
			back = 1 + c.rnd.IntN(12)
		}
		m := time.Date(c.end.Year(), c.end.Month()-time.Month(back), 1, 0, 0, 0, 0, time.UTC)
		v.Set("granularity", "day")
		v.Set("from", m.Format(time.DateOnly))
		v.Set("to", m.AddDate(0, 1, 0).Format(time.DateOnly))
		if c.rnd.IntN(2) == 0 {
			v.Set("metrics", "minutes,jobs_completed,jobs_failed,failure_rate,distinct_users")
			variant += " with distinct users"
		}
		if c.rnd.IntN(10) < 3 {
			v.Set("group_by", "model")
			variant += " by model"
		}
	case routeBreakdown:
		path, variant = "/v1/usage", "tz="+tz
		m := time.Date(c.end.Year(), c.end.Month()-12, 1, 0, 0, 0, 0, time.UTC)
		v.Set("granularity", "month")
		v.Set("group_by", "organization")
		v.Set("top", "10")
		v.Set("from", m.Format(time.DateOnly))
		if c.rnd.IntN(10) < 3 {
			v.Set("metrics", "minutes,jobs_completed,distinct_users")
			variant += " with distinct users"
		}
	default:
		route, variant = routeOrg, "detail"
		path = "/v1/organizations/" + orgs[c.rnd.IntN(len(orgs))].id
	}
	pages := 1
	if route == routeActivity && c.rnd.IntN(10) < 4 {
		pages += 1 + c.rnd.IntN(3)
	}
	for p := range pages {
		if p > 0 {
			variant = strings.TrimSuffix(variant, " (cursor page)") + " (cursor page)"
		}
		body, ok := c.get(ctx, measured, route, variant, path+"?"+v.Encode(), c.keys[r])
		if !ok || pages == 1 {
			return
		}
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		if json.Unmarshal(body, &page) != nil || page.NextCursor == "" {
			return
		}
		v.Set("cursor", page.NextCursor)
	}
}

func (c *queryClient) get(ctx context.Context, measured time.Time, route, variant, path, key string) ([]byte, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		c.errs = append(c.errs, err.Error())
		return nil, false
	}
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := c.http.Do(req)
	status := 0
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	d := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return nil, false
	}
	if start.Before(measured) {
		return body, err == nil && status == http.StatusOK
	}
	c.samples = append(c.samples, sample{route: route, variant: variant, d: d, status: status})
	if err != nil || status != http.StatusOK {
		msg := fmt.Sprintf("%s: %d %v %.200s", path, status, err, body)
		c.errs = append(c.errs, msg)
		return nil, false
	}
	return body, true
}
