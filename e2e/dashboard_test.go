package e2e

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tallyhq/tally/schemas"
)

// TestDashboard drives the embedded dashboard in a real browser (Debian's
// chromium) against a real query service, ClickHouse and NATS. Screenshots
// of every page go to $TALLY_SCREENSHOTS (default: a temp dir).
func TestDashboard(t *testing.T) {
	env := startDashboard(t)
	t.Run("Reseller", func(t *testing.T) { testDashboardReseller(t, env) })
	t.Run("Operator", func(t *testing.T) { testDashboardOperator(t, env) })
	t.Run("SameOrigin", func(t *testing.T) { testDashboardSameOrigin(t, env) })
	t.Run("MissingEndpoints", func(t *testing.T) { testDashboardMissingEndpoints(t, env) })
}

// fmtMinutes is the page's minutes format: "1 h 42 min", "45 min".
func fmtMinutes(m float64) string {
	total := int(math.Round(m))
	if total == 0 && m > 0 {
		return "< 1 min"
	}
	if total < 60 {
		return fmt.Sprintf("%d min", total)
	}
	return fmt.Sprintf("%s h %02d min", groupThousands(total/60), total%60)
}

func groupThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

type overviewMetric struct {
	Value float64 `json:"value"`
}

func testDashboardReseller(t *testing.T, env *dashEnv) {
	p := newPage(t, env)
	downloads := t.TempDir()
	p.allowDownloads(downloads)
	p.signIn("r1")

	// Overview: the cards show the API's own numbers (and the fixture's
	// known answer: 3 organizations, 102 minutes this month).
	p.waitJS("metric cards", `document.querySelectorAll('#metrics .metric').length >= 4`)
	var ov map[string]json.RawMessage
	if err := json.Unmarshal(env.apiGet(t, "r1", "/v1/overview"), &ov); err != nil {
		t.Fatal(err)
	}
	metric := func(name string) float64 {
		var m overviewMetric
		if err := json.Unmarshal(ov[name], &m); err != nil {
			t.Fatalf("overview %s: %v", name, err)
		}
		return m.Value
	}
	want := map[string]string{
		"organizations":        groupThousands(int(metric("organizations"))),
		"active_subscriptions": groupThousands(int(metric("active_subscriptions"))),
		"users":                groupThousands(int(metric("users"))),
		"usage_minutes":        fmtMinutes(metric("usage_minutes")),
	}
	if want["organizations"] != "3" || want["usage_minutes"] != "1 h 42 min" {
		t.Errorf("fixture overview: organizations %s, usage %s; want 3 and 1 h 42 min", want["organizations"], want["usage_minutes"])
	}
	for name, w := range want {
		var got string
		p.eval(fmt.Sprintf(`document.querySelector('[data-metric=%q] .metric-value').innerText`, name), &got)
		if got != w {
			t.Errorf("card %s = %q, want %q", name, got, w)
		}
	}
	var rev string
	p.eval(`(document.querySelector('[data-metric=revenue_EUR] .metric-value') || {innerText: ''}).innerText`, &rev)
	if rev != "€117.00" {
		t.Errorf("revenue card = %q, want €117.00 (MRR of o1, o2, o3)", rev)
	}
	p.waitJS("activity rows", `document.querySelectorAll('#activity-table tbody tr').length > 0`)
	p.waitJS("usage chart", `!!document.querySelector('#usage-30d canvas')`)
	p.noSecrets("overview")
	p.checkFits("overview")
	p.screenshot("overview")

	// Recent activity refreshes live: a job published now shows up
	// without a reload.
	p.eval(`window.__sameDocument = 42`, new(int))
	d, _ := json.Marshal(schemas.JobData{JobID: "j99", UserID: "u4", Model: "nova-2", Language: "nl", CreatedAt: dashNow.Add(-time.Minute), MediaDurationSeconds: 75})
	env.publish(t, &schemas.Event{SpecVersion: schemas.SpecVersion, ID: "dash-live-1", Type: schemas.TypeJobCreated, Source: "dashboard-test",
		Time: dashNow.Add(-time.Minute), ResellerID: "r1", OrgID: "o2", Data: d})
	p.waitJS("the live job j99", `!!document.querySelector('#activity-table tr[data-job=j99]')`)
	var same int
	p.eval(`window.__sameDocument || 0`, &same)
	if same != 42 {
		t.Errorf("the activity table reloaded the page instead of refreshing in place")
	}

	// Organizations: search, then sort on columns (every sort is the API's).
	p.goTo("/organizations")
	p.waitJS("organization rows", `document.querySelectorAll('#org-table tbody tr').length === 3`)
	p.noSecrets("organizations")
	p.checkFits("organizations")
	p.screenshot("organizations")
	p.run("search", chromedp.SendKeys("#org-search", "BETA", chromedp.ByID))
	p.waitJS("search result", `document.querySelectorAll('#org-table tbody tr').length === 1 && document.querySelector('#org-table tbody tr').dataset.org === 'o2' && location.search.includes('q=BETA')`)
	p.run("clear filters", chromedp.Click(`//button[normalize-space()='Clear filters']`, chromedp.BySearch))
	p.waitJS("all rows again", `document.querySelectorAll('#org-table tbody tr').length === 3 && !location.search.includes('q=')`)

	// orgOrder is the API's order for a sort; for plan, status and quota
	// it also checks that order (ties by id, no quota last), so the page
	// matching it means the page shows a real sort.
	orgOrder := func(query string) []string {
		var r struct {
			Organizations []struct {
				ID, Plan, Status string
				QuotaShare       *float64 `json:"quota_share"`
			} `json:"organizations"`
		}
		if err := json.Unmarshal(env.apiGet(t, "r1", "/v1/organizations?"+query), &r); err != nil {
			t.Fatal(err)
		}
		q, _ := url.ParseQuery(query)
		desc := q.Get("order") == "desc"
		var ids []string
		for i, o := range r.Organizations {
			ids = append(ids, o.ID)
			if i == 0 {
				continue
			}
			prev := r.Organizations[i-1]
			d := 0
			switch q.Get("sort") {
			case "plan":
				d = strings.Compare(prev.Plan, o.Plan)
			case "status":
				d = strings.Compare(prev.Status, o.Status)
			case "quota":
				switch {
				case prev.QuotaShare == nil && o.QuotaShare != nil:
					t.Errorf("%s: %s without a quota before %s", query, prev.ID, o.ID)
					continue
				case prev.QuotaShare == nil || o.QuotaShare == nil:
					continue
				}
				d = cmp.Compare(*prev.QuotaShare, *o.QuotaShare)
			default:
				continue
			}
			if d == 0 {
				d = strings.Compare(prev.ID, o.ID)
			}
			if desc {
				d = -d
			}
			if d >= 0 {
				t.Errorf("%s: %s before %s is out of order", query, prev.ID, o.ID)
			}
		}
		return ids
	}
	rowOrder := `Array.from(document.querySelectorAll('#org-table tbody tr')).map(r => r.dataset.org).join(',')`
	for _, c := range []struct {
		click, order string
		want         []string
	}{
		{"usage", "desc", orgOrder("sort=usage&order=desc")},
		{"usage", "asc", orgOrder("sort=usage&order=asc")},
		{"created", "desc", orgOrder("sort=created&order=desc")},
		{"name", "asc", orgOrder("sort=name&order=asc")},
		{"plan", "asc", orgOrder("sort=plan&order=asc")},
		{"plan", "desc", orgOrder("sort=plan&order=desc")},
		{"status", "asc", orgOrder("sort=status&order=asc")},
		{"status", "desc", orgOrder("sort=status&order=desc")},
		{"quota", "desc", orgOrder("sort=quota&order=desc")},
		{"quota", "asc", orgOrder("sort=quota&order=asc")},
	} {
		p.run("sort "+c.click, chromedp.Click(fmt.Sprintf(`button[data-sort=%s]`, c.click), chromedp.ByQuery))
		want := strings.Join(c.want, ",")
		p.waitJS(fmt.Sprintf("sort %s %s = %s", c.click, c.order, want), fmt.Sprintf(`location.search.includes('sort=%s') && location.search.includes('order=%s') && %s === %q`, c.click, c.order, rowOrder, want))
	}

	// An organization's page, and tenancy: r2's o9 does not exist for r1.
	p.run("open Acme Media", chromedp.Click(`#org-table a.org-link[href^="/organizations/o1"]`, chromedp.ByQuery))
	p.waitJS("organization page", `document.querySelector('#org-name') && document.querySelector('#org-name').innerText === 'Acme Media' && document.querySelector('#org-models').innerText.includes('nova-2') && document.querySelector('#org-alerts').innerText.includes('Usage reached 80% of quota')`)
	p.noSecrets("organization o1")
	p.checkFits("organization")
	p.screenshot("organization")
	// Its activity log: o1's jobs of the last 30 days (2026-10-22 on), not r2's o1.
	p.run("export org activity", chromedp.Click("#export-org-activity", chromedp.ByID))
	activity, err := os.ReadFile(waitDownload(t, downloads, "activity_r1_"))
	if err != nil {
		t.Fatal(err)
	}
	arows, err := csv.NewReader(bytes.NewReader(activity)).ReadAll()
	if err != nil {
		t.Fatalf("parse activity CSV: %v", err)
	}
	var jobs []string
	for _, r := range arows[1:] {
		if r[1] != "o1" {
			t.Errorf("activity CSV of o1 has a row of %s: %v", r[1], r)
		}
		jobs = append(jobs, r[2])
	}
	if arows[0][2] != "job_id" || strings.Join(jobs, ",") != "j03,j04,j05" {
		t.Errorf("activity CSV of o1: header %v, jobs %v; want job_id and j03,j04,j05", arows[0], jobs)
	}
	p.goTo("/organizations/o9")
	p.waitJS("not found", `document.body.innerText.includes('Organization not found')`)
	p.noSecrets("organization o9")

	// Usage analytics: the buckets move with the time zone. UTC: the 19th
	// has 32 minutes; Kolkata: 18:40Z on the 19th is the 20th.
	p.goTo("/usage?from=2026-11-18&to=2026-11-20")
	cell := func(day string) string {
		return fmt.Sprintf(`(document.querySelector('#usage-table tr[data-period^="%s"] td') || {innerText: ''}).innerText`, day)
	}
	p.waitJS("UTC buckets", cell("2026-11-19")+` === '32 min' && `+cell("2026-11-20")+` === '0 min'`)
	p.selectValue("#tz-global", "Asia/Kolkata")
	p.waitJS("Kolkata buckets", cell("2026-11-19")+` === '2 min' && `+cell("2026-11-20")+` === '30 min' && location.search.includes('tz=Asia%2FKolkata') && document.querySelector('#usage-table tr[data-period^="2026-11-20"]').dataset.period.endsWith('+05:30')`)
	p.selectValue("#usage-group", "organization")
	p.waitJS("grouped by organization", `document.querySelector('#usage-table thead').innerText.includes('Acme Media') && location.search.includes('group=organization')`)
	p.noSecrets("usage")
	p.checkFits("usage")
	p.screenshot("usage")

	// The usage CSV for these filters, downloaded through the page.
	p.run("export usage", chromedp.Click("#export-usage", chromedp.ByID))
	file := waitDownload(t, downloads, "usage_r1_")
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	wantCSV := env.apiGet(t, "r1", "/v1/reports/usage.csv?tz=Asia/Kolkata&from=2026-11-18&to=2026-11-21&granularity=day&group_by=organization")
	if !bytes.Equal(got, wantCSV) {
		t.Errorf("downloaded %s differs from the API's report:\n%s\nwant:\n%s", filepath.Base(file), got, wantCSV)
	}
	rows, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	if len(rows) < 2 || rows[0][0] != "period_start" || rows[0][1] != "organization" || rows[0][2] != "minutes" {
		t.Fatalf("usage CSV header %v", rows[0])
	}
	found := false
	for _, r := range rows[1:] {
		if r[1] != "o1" && r[1] != "o2" && r[1] != "o3" {
			t.Errorf("usage CSV row of another reseller's organization: %v", r)
		}
		if r[0] == "2026-11-20T00:00:00+05:30" && r[1] == "o1" {
			found = true
			if r[2] != "30" {
				t.Errorf("usage CSV o1 on the 20th (Kolkata): %s minutes, want 30", r[2])
			}
		}
	}
	if !found {
		t.Errorf("usage CSV has no row for o1 on 2026-11-20 (Kolkata):\n%s", got)
	}

	// Alerts and notifications: the raised alert is in the feed.
	p.goTo("/alerts")
	p.waitJS("the raised alert in the feed", `!!document.querySelector('#feed-list') && document.querySelector('#feed-list').innerText.includes('Usage reached 80% of quota')`)
	p.waitJS("the alerts panel (list or error state)", `!!document.querySelector('#alert-table') || !!document.querySelector('#alerts .state.error') || !!document.querySelector('#alerts .state.empty')`)
	p.waitJS("the raised alert in the alert list", `document.querySelector('#alert-table').innerText.includes('Usage reached 80% of quota')`)
	p.waitJS("unread count", `!!document.querySelector('#unread-count')`)
	p.noSecrets("alerts")
	p.checkFits("alerts")
	p.screenshot("alerts")

	// Acknowledge the alert; mark the feed read.
	const quotaKey = "quota|r1|o1|2026-11-01T00:00:00Z|80"
	p.run("acknowledge", chromedp.Click(fmt.Sprintf(`#alert-table tr[data-alert=%q] button`, quotaKey), chromedp.ByQuery))
	p.waitJS("acknowledged", fmt.Sprintf(`!document.querySelector('#alert-table tr[data-alert=%q] button')`, quotaKey))
	var alerts struct {
		Alerts []struct {
			Key            string  `json:"alert_key"`
			AcknowledgedAt *string `json:"acknowledged_at"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(env.apiGet(t, "r1", "/v1/alerts"), &alerts); err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts.Alerts {
		if a.Key == quotaKey && a.AcknowledgedAt == nil {
			t.Errorf("alert %s: the API has no acknowledgement after the click", quotaKey)
		}
	}
	p.run("mark all read", chromedp.Click("#mark-all-read", chromedp.ByID))
	p.waitJS("all read", `document.querySelector('#feed h2').innerText.includes('0 unread') && !document.querySelector('#unread-count') && !document.querySelector('#feed-list li.unread')`)

	// Settings: disable a rule, edit a threshold, test-fire; add a webhook.
	p.goTo("/settings")
	p.waitJS("settings panels loaded", `['#rules', '#webhooks'].every(s => document.querySelector(s) && !document.querySelector(s + ' .state.loading'))`)
	p.run("disable no_jobs", chromedp.Click(`//li[@data-rule='no_jobs']//button[normalize-space()='Disable']`, chromedp.BySearch))
	p.waitJS("no_jobs disabled", `document.querySelector('li[data-rule=no_jobs] .badge').innerText.toLowerCase() === 'disabled'`)
	p.run("edit no_jobs", chromedp.Click(`//li[@data-rule='no_jobs']//button[normalize-space()='Edit thresholds']`, chromedp.BySearch))
	p.eval(`(() => { const i = document.querySelector('#rule-no_jobs-no_jobs_days'); i.value = '12'; i.dispatchEvent(new Event('input', {bubbles: true})); return true })()`, new(bool))
	p.run("save no_jobs", chromedp.Click(`//li[@data-rule='no_jobs']//button[normalize-space()='Save']`, chromedp.BySearch))
	p.waitJS("no_jobs saved", `document.querySelector('li[data-rule=no_jobs]').innerText.includes('no jobs days: 12')`)
	var rules struct {
		Rules []struct {
			Rule     string         `json:"rule"`
			Enabled  bool           `json:"enabled"`
			Settings map[string]any `json:"settings"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(env.apiGet(t, "r1", "/v1/alert-rules"), &rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Rules {
		if r.Rule == "no_jobs" && (r.Enabled || r.Settings["no_jobs_days"] != 12.0) {
			t.Errorf("no_jobs rule after the edits: enabled %v, settings %v; want disabled, 12 days", r.Enabled, r.Settings)
		}
	}
	p.run("test-fire quota", chromedp.Click(`//li[@data-rule='quota']//button[normalize-space()='Test-fire']`, chromedp.BySearch))
	p.waitJS("test alert sent", `document.querySelector('li[data-rule=quota]').innerText.includes('Test alert sent')`)

	p.run("add webhook", chromedp.Click(`//section[@id='webhooks']//button[normalize-space()='Add webhook']`, chromedp.BySearch))
	p.run("webhook url", chromedp.SendKeys("#wh-new-url", "https://hooks.example.com/tally", chromedp.ByID))
	p.run("save webhook", chromedp.Click(`//form[contains(@class,'webhook-form')]//button[@type='submit']`, chromedp.BySearch))
	p.waitJS("webhook listed with its secret shown once", `document.querySelector('#webhooks .notice') && document.querySelector('#webhooks .notice').innerText.includes('shown only now') && document.querySelector('#webhooks li.webhook').innerText.includes('https://hooks.example.com/tally')`)
	p.noSecrets("settings")
	p.checkFits("settings")
	p.screenshot("settings")
	p.eval(`(window.confirm = () => true, true)`, new(bool))
	p.run("delete webhook", chromedp.Click(`//li[contains(@class,'webhook')]//button[normalize-space()='Delete']`, chromedp.BySearch))
	p.waitJS("webhook deleted", `!document.querySelector('#webhooks li.webhook')`)

	// Sign out forgets the key.
	p.run("sign out", chromedp.Click("#sign-out", chromedp.ByID), chromedp.WaitVisible("#key", chromedp.ByID))
	var stored string
	p.eval(`sessionStorage.getItem('tally.key') || ''`, &stored)
	if stored != "" {
		t.Errorf("the key stays in sessionStorage after sign-out")
	}
}

func testDashboardOperator(t *testing.T, env *dashEnv) {
	p := newPage(t, env)
	p.signIn("operator")
	p.waitJS("reseller picker", `!!document.querySelector('#reseller-picker') || (!!document.querySelector('#reseller-input') && document.querySelector('#reseller-input').placeholder !== 'loading…')`)
	var picker bool
	p.eval(`!!document.querySelector('#reseller-picker')`, &picker)
	if picker {
		p.waitJS("resellers listed", `Array.from(document.querySelectorAll('#reseller-picker option')).some(o => o.value === 'r2')`)
		p.selectValue("#reseller-picker", "r2")
	} else {
		p.run("type reseller", chromedp.SendKeys("#reseller-input", "r2\n", chromedp.ByID))
	}
	p.waitJS("r2 overview", `location.search.includes('reseller=r2') && document.querySelectorAll('#metrics .metric').length >= 4`)
	p.goTo("/organizations?reseller=r2")
	p.waitJS("r2's organizations", `document.querySelector('#org-table') && document.querySelector('#org-table').innerText.includes('Zeta Secret Corp')`)
	if strings.Contains(p.text(), "Acme Media") {
		t.Errorf("r2's organization list shows r1's Acme Media")
	}
}

// testDashboardSameOrigin visits every page and checks that each request
// went to the test server (newPage's cleanup fails on any other host).
func testDashboardSameOrigin(t *testing.T, env *dashEnv) {
	p := newPage(t, env)
	p.signIn("r1")
	for _, path := range []string{"/", "/organizations", "/organizations/o1", "/usage?group=model", "/alerts", "/settings", "/no-such-page"} {
		p.open(path)
		p.waitJS("page "+path, `!!document.querySelector('#main') && document.querySelectorAll('#main .state.loading').length === 0`)
	}
	p.checkOrigins()
	p.mu.Lock()
	defer p.mu.Unlock()
	var api, assets int
	for _, u := range p.requests {
		switch {
		case strings.HasPrefix(u, env.base+"/v1/"):
			api++
		case strings.HasPrefix(u, env.base+"/assets/"):
			assets++
		}
	}
	if api == 0 || assets == 0 {
		t.Errorf("recorded %d API and %d asset requests of %d: the network listener sees nothing?", api, assets, len(p.requests))
	}
}

// checkFits fails when the page is wider than the 1280px window, or when a
// form control has no label (keyboard and screen reader users need one).
func (p *page) checkFits(where string) {
	p.t.Helper()
	var w int
	p.eval(`document.documentElement.scrollWidth`, &w)
	if w > 1280 {
		p.t.Errorf("%s: the page is %dpx wide in a 1280px window", where, w)
	}
	var unlabeled []string
	p.eval(`Array.from(document.querySelectorAll('input, select, textarea')).filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML.slice(0, 80))`, &unlabeled)
	if len(unlabeled) > 0 {
		p.t.Errorf("%s: form controls without a label: %v", where, unlabeled)
	}
}

// waitDownload waits for a finished download whose name starts with prefix.
func waitDownload(t *testing.T, dir, prefix string) string {
	t.Helper()
	var file string
	waitFor(t, 20*time.Second, "download "+prefix+"*", func() (bool, string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".csv") {
				file = filepath.Join(dir, e.Name())
				return true, ""
			}
		}
		return false, fmt.Sprintf("files: %v", names)
	})
	return file
}
