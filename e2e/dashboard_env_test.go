package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/projector"
	"github.com/tallyhq/tally/publish"
	queryapi "github.com/tallyhq/tally/query"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// chromiumPath is Debian's chromium, installed by scripts/install-deps.sh --test.
const chromiumPath = "/usr/bin/chromium"

// dashNow is the query service's clock: Friday 2026-11-20 12:00 UTC.
var dashNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// Names of reseller r2 that must never show on r1's pages.
var r2Secrets = []string{"Zeta Secret Corp", "Omega Hidden Ltd", "secret-model", "Only for r2"}

type dashEnv struct {
	base string // http://127.0.0.1:port
	keys map[string]string
	pub  *publish.Publisher
	ch   *testenv.CH
	seq  int
}

func dashTS(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type dashFixture struct{ events []*schemas.Event }

func (f *dashFixture) add(typ, reseller, org, at string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	f.events = append(f.events, &schemas.Event{
		SpecVersion: schemas.SpecVersion, ID: fmt.Sprintf("dash-%04d", len(f.events)+1), Type: typ, Source: "dashboard-test",
		Time: dashTS(at), ResellerID: reseller, OrgID: org, Data: raw,
	})
}

func (f *dashFixture) org(reseller, org, name, plan, status, created string) {
	f.add(schemas.TypeOrganizationCreated, reseller, org, created, schemas.OrganizationData{Name: name, Plan: plan, Status: status, CreatedAt: dashTS(created)})
}

func (f *dashFixture) sub(reseller, org, at, plan, status string, quota, price int64, cur string) {
	start := dashTS(at)
	f.add(schemas.TypeSubscriptionChanged, reseller, org, at, schemas.SubscriptionData{
		Plan: plan, Status: status, QuotaMinutes: quota, PriceMinor: price, Currency: cur,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0),
	})
}

func (f *dashFixture) user(reseller, org, at, user string) {
	f.add(schemas.TypeUserAdded, reseller, org, at, schemas.UserData{UserID: user, Role: "member"})
}

func (f *dashFixture) job(reseller, org, id, user, model, lang, created, end, outcome string, mediaSec float64, procMS int64) {
	d := schemas.JobData{JobID: id, UserID: user, Model: model, Language: lang, CreatedAt: dashTS(created), MediaDurationSeconds: mediaSec}
	f.add(schemas.TypeJobCreated, reseller, org, created, d)
	switch outcome {
	case "completed":
		d.ProcessingMS = procMS
		f.add(schemas.TypeJobCompleted, reseller, org, end, d)
	case "failed":
		d.ProcessingMS = procMS
		d.ErrorCode = "unsupported_codec"
		f.add(schemas.TypeJobFailed, reseller, org, end, d)
	}
}

// dashFixtureEvents: reseller r1 has three organizations with jobs on the
// edges time zones move (18:40Z on the 19th is the 20th in Kolkata);
// reseller r2 has its own, distinctively named, organizations (one with
// the same id o1) that r1's pages must never show.
func dashFixtureEvents() []*schemas.Event {
	var f dashFixture
	f.org("r1", "o1", "Acme Media", "pro", "active", "2026-09-01T10:00:00Z")
	f.org("r1", "o2", "Beta Labs", "starter", "trial", "2026-10-15T09:00:00Z")
	f.org("r1", "o3", "gamma studio", "pro", "suspended", "2026-11-05T08:00:00Z")
	f.org("r2", "o1", "Zeta Secret Corp", "enterprise", "active", "2026-08-01T00:00:00Z")
	f.org("r2", "o9", "Omega Hidden Ltd", "pro", "active", "2026-08-02T00:00:00Z")

	f.sub("r1", "o1", "2026-10-01T00:00:00Z", "pro", "active", 1000, 4900, "EUR")
	f.sub("r1", "o2", "2026-11-10T09:00:00Z", "starter", "active", 300, 1900, "EUR")
	f.sub("r1", "o3", "2026-11-05T08:00:00Z", "pro", "active", 1000, 4900, "EUR")
	f.sub("r2", "o1", "2026-10-01T00:00:00Z", "enterprise", "active", 50000, 99000, "USD")

	f.user("r1", "o1", "2026-09-01T10:00:00Z", "u1")
	f.user("r1", "o1", "2026-11-03T10:00:00Z", "u3")
	f.user("r1", "o2", "2026-10-15T09:00:00Z", "u4")
	f.user("r2", "o1", "2026-08-01T00:00:00Z", "u9")

	f.job("r1", "o1", "j01", "u1", "whisper-large", "en", "2026-10-05T10:00:00Z", "2026-10-05T10:05:00Z", "completed", 600, 30000)
	f.job("r1", "o1", "j03", "u1", "whisper-large", "en", "2026-11-01T05:20:00Z", "2026-11-01T05:30:00Z", "completed", 300, 20000)
	f.job("r1", "o1", "j04", "u1", "nova-2", "en", "2026-11-01T06:20:00Z", "2026-11-01T06:30:00Z", "completed", 900, 25000)
	f.job("r1", "o1", "j05", "u3", "nova-2", "de", "2026-11-19T18:30:00Z", "2026-11-19T18:40:00Z", "completed", 1800, 90000)
	f.job("r1", "o2", "j06", "u4", "whisper-large", "en", "2026-11-19T10:20:00Z", "2026-11-19T10:30:00Z", "completed", 120, 8000)
	f.job("r1", "o2", "j07", "u4", "whisper-large", "en", "2026-11-19T11:00:00Z", "2026-11-19T11:02:00Z", "failed", 60, 2000)
	f.job("r1", "o3", "j10", "u5", "whisper-large", "fr", "2026-11-10T09:00:00Z", "2026-11-10T09:15:00Z", "completed", 3000, 100000)
	f.job("r2", "o1", "j01", "u9", "secret-model", "ja", "2026-11-19T18:30:00Z", "2026-11-19T18:45:00Z", "completed", 36000, 500000)
	f.job("r2", "o9", "j02", "u8", "secret-model", "ja", "2026-11-20T09:00:00Z", "2026-11-20T09:20:00Z", "failed", 100, 500)
	f.add(schemas.TypeSystemNotice, "", "", "2026-11-03T09:00:00Z", schemas.SystemNoticeData{NoticeID: "n1", Title: "Maintenance on Sunday", Body: "The API is read-only 02:00-03:00 UTC.", Severity: "warning"})
	f.add(schemas.TypeSystemNotice, "r2", "", "2026-11-04T09:00:00Z", schemas.SystemNoticeData{NoticeID: "n2", Title: "Only for r2", Body: "r2's plans", Severity: "info"})
	return f.events
}

// startDashboard is `tally dev` in miniature: NATS JetStream, ClickHouse
// with migrations, the fixture projected by a running projector (it keeps
// running, so events published later reach the page), an alert row, keys
// for r1 (revenue), r2 and the operator, and the query service serving the
// embedded dashboard on a free port.
func startDashboard(t *testing.T) *dashEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ch := testenv.ClickHouse(t)
	if err := stream.Ensure(ctx, js, stream.Config{}); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	pr, err := projector.New(projector.DefaultConfig(), js, ch.Conn, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	q, err := queryapi.New(dashQueryConfig(js), ch.Conn, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for name, run := range map[string]func(context.Context) error{
		"projector": pr.Run,
		"query":     func(ctx context.Context) error { return q.Serve(ctx, ln) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	env := &dashEnv{base: "http://" + ln.Addr().String(), keys: map[string]string{}, pub: publish.New(js, publish.Options{}), ch: ch}
	events := dashFixtureEvents()
	env.publish(t, events...)
	env.waitEvents(t, len(events))
	insertDashAlerts(t, ch)
	for name, spec := range map[string]queryapi.KeySpec{
		"r1":       {Name: "r1 dashboard", ResellerID: "r1", Revenue: true},
		"r2":       {Name: "r2 dashboard", ResellerID: "r2"},
		"operator": {Name: "ops", Operator: true},
	} {
		_, secret, err := queryapi.CreateKey(ctx, ch.Conn, spec, dashNow)
		if err != nil {
			t.Fatalf("create key %s: %v", name, err)
		}
		env.keys[name] = secret
	}
	return env
}

// dashQueryConfig is the query service's configuration in the test.
func dashQueryConfig(js jetstream.JetStream) queryapi.Config {
	return queryapi.Config{Listen: "127.0.0.1:0", Now: func() time.Time { return dashNow }, KeyCacheTTL: time.Second, JetStream: js}
}

func (e *dashEnv) publish(t *testing.T, events ...*schemas.Event) {
	t.Helper()
	results, err := e.pub.PublishBatch(t.Context(), events)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	for _, r := range results {
		if r.Status != publish.StatusAccepted {
			t.Fatalf("publish %s: %s %v", r.ID, r.Status, r.Err)
		}
	}
	e.seq += len(events)
}

func (e *dashEnv) waitEvents(t *testing.T, n int) {
	t.Helper()
	waitFor(t, time.Minute, "the projector", func() (bool, string) {
		var got uint64
		if err := e.ch.Conn.QueryRow(t.Context(), "SELECT count() FROM events").Scan(&got); err != nil {
			return false, err.Error()
		}
		return got >= uint64(n), fmt.Sprintf("%d of %d events", got, n)
	})
}

// insertDashAlerts raises alerts as the alerts stage would: one firing
// for r1, one for r2 (never visible to r1).
func insertDashAlerts(t *testing.T, ch *testenv.CH) {
	t.Helper()
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO alerts (alert_key, rule, reseller_id, org_id, period, threshold, state, severity, title, details, first_fired_at, last_seen_at, resolved_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Unix(0, 0).UTC()
	for _, a := range []struct{ key, rule, reseller, org, title string }{
		{"quota|r1|o1|2026-11-01T00:00:00Z|80", "quota", "r1", "o1", "Usage reached 80% of quota: 800 of 1000 minutes"},
		{"usage_spike|r2|o9|2026-11-20T09:00:00Z|", "usage_spike", "r2", "o9", "Usage spike Only for r2"},
	} {
		fired := dashNow.Add(-2 * time.Hour)
		if err := b.Append(a.key, a.rule, a.reseller, a.org, "2026-11-01T00:00:00Z", "80", "firing", "warning", a.title, "{}", fired, fired, zero, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// apiGet fetches an API path with a key, for the numbers the page must show.
func (e *dashEnv) apiGet(t *testing.T, key, path string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.keys[key])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return body
}

// page is one browser tab on the dashboard; every request it makes is
// recorded, and at cleanup any request to another origin fails the test.
type page struct {
	t        *testing.T
	ctx      context.Context
	env      *dashEnv
	mu       sync.Mutex
	requests []string
	shots    string
}

func newPage(t *testing.T, env *dashEnv) *page {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is needed for the dashboard tests: %v; install it with `apt-get install -y chromium` (or `bash scripts/install-deps.sh --test`)", err)
	}
	// Not t.TempDir: chromium's helpers may still write into the profile
	// for a moment after the browser exits.
	profile, err := os.MkdirTemp("", "tally-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	p := &page{t: t, ctx: ctx, env: env, shots: os.Getenv("TALLY_SCREENSHOTS")}
	if p.shots == "" {
		p.shots = t.TempDir()
	}
	if err := os.MkdirAll(p.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			p.mu.Lock()
			p.requests = append(p.requests, e.Request.URL)
			p.mu.Unlock()
		}
	})
	if err := chromedp.Run(ctx, network.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(p.checkOrigins)
	return p
}

// checkOrigins fails the test on any request the page made to a host other
// than the test server (data: and blob: URLs of the page itself are fine).
func (p *page) checkOrigins() {
	p.t.Helper()
	want, _ := url.Parse(p.env.base)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, raw := range p.requests {
		u, err := url.Parse(raw)
		if err != nil {
			p.t.Errorf("request to unparsable URL %q", raw)
			continue
		}
		switch u.Scheme {
		case "data", "about":
			continue
		case "blob":
			if strings.HasPrefix(u.Opaque, p.env.base+"/") {
				continue
			}
		case "http", "https":
			if u.Host == want.Host && u.Scheme == want.Scheme {
				continue
			}
		}
		p.t.Errorf("the page requested %s: every request must go to %s", raw, p.env.base)
	}
}

func (p *page) run(what string, actions ...chromedp.Action) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitJS polls a JavaScript boolean expression until it holds.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	var ok bool
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	guarded := fmt.Sprintf(`(() => { try { return !!(%s) } catch (e) { return false } })()`, expr)
	if err := chromedp.Run(ctx, chromedp.Poll(guarded, &ok, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		var text string
		_ = chromedp.Run(p.ctx, chromedp.Evaluate(`document.querySelector('main') ? document.querySelector('main').innerText.slice(0, 1500) : document.body.innerText.slice(0, 1500)`, &text))
		p.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, text)
	}
}

func (p *page) eval(expr string, out any) {
	p.t.Helper()
	p.run("evaluate "+expr, chromedp.Evaluate(expr, out))
}

func (p *page) text() string {
	p.t.Helper()
	var s string
	p.eval(`document.body.innerText`, &s)
	return s
}

// open navigates to a dashboard path (the session survives: same tab).
func (p *page) open(path string) {
	p.t.Helper()
	p.run("open "+path, chromedp.Navigate(p.env.base+path))
}

// go navigates inside the page (client-side routing, no reload).
func (p *page) goTo(path string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(() => { history.pushState(null, '', %q); dispatchEvent(new PopStateEvent('popstate')); return true })()`, path), new(bool))
}

func (p *page) signIn(key string) {
	p.t.Helper()
	p.open("/")
	p.run("sign in",
		chromedp.WaitVisible("#key", chromedp.ByID),
		chromedp.SendKeys("#key", p.env.keys[key], chromedp.ByID),
		chromedp.Click(`form button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#sign-out", chromedp.ByID),
	)
}

// selectValue picks an option of a <select> the way a user does (change event).
func (p *page) selectValue(sel, value string) {
	p.t.Helper()
	var got string
	p.eval(fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); return s.value })()`, sel, value), &got)
	if got != value {
		p.t.Fatalf("select %s: no option %q", sel, value)
	}
}

// screenshot saves the full page as <dir>/<name>.png.
func (p *page) screenshot(name string) {
	p.t.Helper()
	var buf []byte
	p.eval(`(scrollTo(0, 0), document.activeElement && document.activeElement.blur && document.activeElement.blur(), true)`, new(bool))
	p.run("screenshot "+name, chromedp.FullScreenshot(&buf, 100))
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// allowDownloads saves downloads into dir.
func (p *page) allowDownloads(dir string) {
	p.t.Helper()
	p.run("download behavior", browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllow).WithDownloadPath(dir).WithEventsEnabled(true))
}

// noSecrets fails if any of r2's names is on the page.
func (p *page) noSecrets(where string) {
	p.t.Helper()
	var html string
	p.eval(`document.documentElement.outerHTML + '\n' + document.body.innerText`, &html)
	for _, s := range r2Secrets {
		if strings.Contains(html, s) {
			p.t.Errorf("%s: reseller r2's %q shows on r1's page", where, s)
		}
	}
}
