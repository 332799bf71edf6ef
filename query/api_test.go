package query

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tallyhq/tally/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type apiEnv struct {
	q    *Query
	keys map[string]string // role name → secret
	ch   *testenv.CH
	js   jetstream.JetStream
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ch := project(t, fixtureEvents())
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	q, err := New(Config{Now: func() time.Time { return fixedNow }, KeyCacheTTL: 300 * time.Millisecond, JetStream: js}, ch.Conn, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	env := &apiEnv{q: q, ch: ch, keys: map[string]string{}, js: js}
	insertAlerts(t, ch)
	insertAlertState(t, ch)
	for name, spec := range map[string]KeySpec{
		"r1":       {Name: "r1 dashboard", ResellerID: "r1", Revenue: true},
		"r2":       {Name: "r2 dashboard", ResellerID: "r2"},
		"operator": {Name: "ops", Operator: true},
		"revoked":  {Name: "old r1 key", ResellerID: "r1"},
	} {
		k, secret, err := CreateKey(t.Context(), ch.Conn, spec, fixedNow)
		if err != nil {
			t.Fatalf("create key %s: %v", name, err)
		}
		env.keys[name] = secret
		if name == "revoked" {
			if _, err := RevokeKey(t.Context(), ch.Conn, k.ID, fixedNow); err != nil {
				t.Fatal(err)
			}
		}
	}
	return env
}

func (e *apiEnv) get(t *testing.T, key, path string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+e.keys[key])
	}
	res, err := e.q.App().Test(req, -1)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

// do sends a request with an optional JSON body.
func (e *apiEnv) do(t *testing.T, method, key, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+e.keys[key])
	}
	res, err := e.q.App().Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query/ -run TestAPI -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("response differs from %s (-update rewrites it):\ngot:\n%s", path, buf.Bytes())
	}
}

func goldenText(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query/ -run TestAPI -update to create it)", err)
	}
	if !bytes.Equal(want, body) {
		t.Errorf("response differs from %s (-update rewrites it):\ngot:\n%s", path, body)
	}
}

func TestAPI(t *testing.T) {
	env := newAPIEnv(t)

	t.Run("golden", func(t *testing.T) {
		cases := []struct {
			name, key, path string
			status          int
		}{
			{"overview_r1", "r1", "/v1/overview", 200},
			{"overview_r1_kolkata", "r1", "/v1/overview?tz=Asia/Kolkata", 200},
			{"overview_r2_no_revenue", "r2", "/v1/overview", 200},
			{"overview_operator_r2", "operator", "/v1/overview?reseller=r2", 200},
			{"activity_r1", "r1", "/v1/activity?limit=4", 200},
			{"activity_r1_filtered", "r1", "/v1/activity?status=in_progress,failed&model=nova-2,whisper-large&tz=Asia/Kolkata", 200},
			{"activity_r1_org", "r1", "/v1/activity?org=o3", 200},
			{"organizations_r1", "r1", "/v1/organizations", 200},
			{"organizations_r1_usage_desc", "r1", "/v1/organizations?sort=usage&order=desc&page_size=2", 200},
			{"organizations_r1_page2", "r1", "/v1/organizations?sort=created&page_size=2&page=2", 200},
			{"organizations_r1_search", "r1", "/v1/organizations?q=GAMMA", 200},
			{"organizations_r1_plan_status", "r1", "/v1/organizations?plan=pro&status=active,suspended&sort=users&order=desc", 200},
			{"organizations_r1_plan", "r1", "/v1/organizations?sort=plan", 200},
			{"organizations_r1_status_desc", "r1", "/v1/organizations?sort=status&order=desc", 200},
			{"organizations_r1_quota_desc", "r1", "/v1/organizations?sort=quota&order=desc", 200},
			{"organizations_r1_quota_page2", "r1", "/v1/organizations?sort=quota&page_size=2&page=2", 200},
			{"organizations_r2_quota_asc", "operator", "/v1/organizations?reseller=r2&sort=quota", 200},
			{"organizations_r2_quota_desc", "operator", "/v1/organizations?reseller=r2&sort=quota&order=desc", 200},
			{"organization_r1_o1", "r1", "/v1/organizations/o1?tz=Asia/Kolkata", 200},
			{"organization_r2_o1", "r2", "/v1/organizations/o1", 200},
			{"usage_r1_default", "r1", "/v1/usage", 200},
			{"usage_r1_day_kolkata_by_org", "r1", "/v1/usage?from=2026-11-18&to=2026-11-21&tz=Asia/Kolkata&group_by=organization&metrics=minutes,jobs_completed,jobs_failed,failure_rate,distinct_users,avg_processing_ms", 200},
			{"usage_r1_day_users", "r1", "/v1/usage?from=2026-11-17&to=2026-11-21&tz=America/New_York&metrics=minutes,distinct_users,jobs_completed", 200},
			{"usage_r1_day_users_los_angeles", "r1", "/v1/usage?from=2026-10-19&to=2026-11-03&tz=America/Los_Angeles&metrics=minutes,distinct_users,jobs_completed", 200},
			{"usage_r1_day_by_org_users_los_angeles", "r1", "/v1/usage?from=2026-10-19&to=2026-11-03&tz=America/Los_Angeles&group_by=organization&metrics=minutes,distinct_users", 200},
			{"usage_r1_week_users_kolkata", "r1", "/v1/usage?granularity=week&from=2026-10-26&to=2026-11-23&tz=Asia/Kolkata&metrics=minutes,distinct_users", 200},
			{"usage_r1_day_chatham", "r1", "/v1/usage?from=2026-11-19&to=2026-11-21&tz=Pacific/Chatham&metrics=minutes,jobs_completed", 200},
			{"usage_r1_hour_kathmandu", "r1", "/v1/usage?granularity=hour&from=2026-11-19T17:00:00Z&to=2026-11-19T20:00:00Z&tz=Asia/Kathmandu&metrics=minutes", 200},
			{"usage_r1_hour_new_york_dst", "r1", "/v1/usage?granularity=hour&from=2026-11-01T04:00:00Z&to=2026-11-01T08:00:00Z&tz=America/New_York&group_by=model&metrics=minutes,jobs_completed", 200},
			{"usage_r1_week_by_model_language", "r1", "/v1/usage?granularity=week&from=2026-10-26&to=2026-11-23&group_by=model,language&metrics=minutes,distinct_users", 200},
			{"usage_r1_day_by_model_users_kolkata", "r1", "/v1/usage?from=2026-11-17&to=2026-11-21&tz=Asia/Kolkata&group_by=model&metrics=minutes,distinct_users", 200},
			{"usage_r1_day_by_org_language_users_new_york_dst", "r1", "/v1/usage?from=2026-10-30&to=2026-11-03&tz=America/New_York&group_by=organization,language&model=nova-2,whisper-large&metrics=minutes,distinct_users", 200},
			{"usage_r1_month_top1", "r1", "/v1/usage?granularity=month&from=2026-09-01&to=2026-12-01&group_by=organization&top=1&metrics=minutes,jobs_completed,distinct_users", 200},
			{"usage_r1_filters", "r1", "/v1/usage?granularity=month&from=2026-10-01&to=2026-12-01&plan=starter&model=whisper-large&language=en&metrics=minutes,jobs_completed,jobs_failed", 200},
			{"notifications_r1", "r1", "/v1/notifications", 200},
			{"notifications_r2_page", "r2", "/v1/notifications?limit=2", 200},
			{"notifications_r1_billing", "r1", "/v1/notifications?kind=billing,system&tz=Europe/Amsterdam", 200},
			{"notifications_r1_usage", "r1", "/v1/notifications?kind=usage", 200},
			{"error_notification_kind", "r1", "/v1/notifications?kind=weather", 400},
			{"me_r1", "r1", "/v1/me", 200},
			{"me_r2", "r2", "/v1/me", 200},
			{"me_operator", "operator", "/v1/me", 200},
			{"resellers_operator", "operator", "/v1/resellers", 200},
			{"resellers_r2", "r2", "/v1/resellers", 200},
			{"alerts_r1", "r1", "/v1/alerts?tz=Asia/Kolkata", 200},
			{"alerts_r1_firing", "r1", "/v1/alerts?state=firing", 200},
			{"alerts_r1_acknowledged", "r1", "/v1/alerts?acknowledged=true", 200},
			{"alerts_r1_unacknowledged_o1", "r1", "/v1/alerts?acknowledged=false&org=o1&rule=quota,payment_failed", 200},
			{"alerts_r1_period", "r1", "/v1/alerts?period=2026-11-19T10:00:00Z", 200},
			{"alerts_r1_page", "r1", "/v1/alerts?limit=1", 200},
			{"alerts_r1_page2", "r1", "/v1/alerts?limit=1&cursor=" + noteCursor{timeMS: uint64(fixedNow.Add(-time.Hour).UnixMilli()), id: "payment_failed|r1|o1|inv-1|"}.encode(), 200},
			{"alerts_operator_r2", "operator", "/v1/alerts?reseller=r2", 200},
			{"alert_rules_r1", "r1", "/v1/alert-rules", 200},
			{"alert_rules_r2", "r2", "/v1/alert-rules", 200},
			{"webhooks_r1", "r1", "/v1/webhooks?tz=Europe/Amsterdam", 200},
			{"webhooks_r2", "r2", "/v1/webhooks", 200},
			{"webhook_deliveries_r1", "r1", "/v1/webhooks/wh-r1/deliveries", 200},
			{"webhook_deliveries_r1_limit", "r1", "/v1/webhooks/wh-r1/deliveries?limit=1", 200},
			{"error_alerts_state", "r1", "/v1/alerts?state=burning", 400},
			{"error_alerts_rule", "r1", "/v1/alerts?rule=customer_activity", 400},
			{"error_alerts_org", "r1", "/v1/alerts?org=a.b", 400},
			{"error_alerts_acknowledged", "r1", "/v1/alerts?acknowledged=maybe", 400},
			{"error_alerts_limit", "r1", "/v1/alerts?limit=501", 400},
			{"error_alerts_cursor", "r1", "/v1/alerts?cursor=@@", 400},
			{"error_deliveries_limit", "r1", "/v1/webhooks/wh-r1/deliveries?limit=0", 400},
			{"error_webhook_not_found", "r1", "/v1/webhooks/wh-r2/deliveries", 404},
			{"error_report_range", "r1", "/v1/reports/activity.csv?from=2026-11-10&to=2026-11-01", 400},
			{"error_report_status", "r1", "/v1/reports/activity.csv?status=queued", 400},
			{"error_financial_without_revenue", "r2", "/v1/reports/financial.csv", 403},
			{"error_group_by", "r1", "/v1/usage?group_by=country", 400},
			{"error_group_by_three", "r1", "/v1/usage?group_by=organization,model,language", 400},
			{"error_from_after_to", "r1", "/v1/usage?from=2026-11-10&to=2026-11-01", 400},
			{"error_tz", "r1", "/v1/usage?tz=Mars/Olympus", 400},
			{"error_limit", "r1", "/v1/activity?limit=0", 400},
			{"error_cursor", "r1", "/v1/activity?cursor=@@@", 400},
			{"error_granularity", "r1", "/v1/usage?granularity=minute", 400},
			{"error_too_many_periods", "r1", "/v1/usage?granularity=hour&from=2025-01-01&to=2026-11-01", 400},
			{"error_sort", "r1", "/v1/organizations?sort=revenue", 400},
			{"error_no_key", "", "/v1/overview", 401},
			{"error_revoked_key", "revoked", "/v1/overview", 401},
			{"error_other_reseller", "r1", "/v1/overview?reseller=r2", 403},
			{"error_operator_without_reseller", "operator", "/v1/overview", 400},
			{"error_org_not_found", "r1", "/v1/organizations/nope", 404},
			{"error_route", "r1", "/v1/nothing", 404},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				status, body := env.get(t, tc.key, tc.path)
				if status != tc.status {
					t.Errorf("GET %s: status %d, want %d\n%s", tc.path, status, tc.status, body)
				}
				golden(t, tc.name, body)
			})
		}
	})

	t.Run("csv", func(t *testing.T) {
		cases := []struct {
			name, key, path string
			status          int
			filename        string
		}{
			{"report_usage_r1", "r1", "/v1/reports/usage.csv?granularity=day&from=2026-11-18&to=2026-11-21&tz=Asia/Kolkata&group_by=organization", 200, "usage_r1_2026-11-18_2026-11-20.csv"},
			{"report_financial_r1", "r1", "/v1/reports/financial.csv?from=2026-11-01&to=2026-12-01", 200, "financial_r1_2026-11-01_2026-11-30.csv"},
			{"report_activity_r1", "r1", "/v1/reports/activity.csv?from=2026-11-01&to=2026-11-21&status=completed,failed", 200, "activity_r1_2026-11-01_2026-11-20.csv"},
			{"report_activity_r2", "r2", "/v1/reports/activity.csv", 200, "activity_r2_2026-11-01_2026-11-20.csv"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, tc.path, nil)
				req.Header.Set("Authorization", "Bearer "+env.keys[tc.key])
				res, err := env.q.App().Test(req, -1)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
				}
				if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename="`+tc.filename+`"` {
					t.Errorf("Content-Disposition %q, want filename %s", cd, tc.filename)
				}
				goldenText(t, tc.name+".csv", body)
			})
		}
		if status, body := env.get(t, "r2", "/v1/reports/financial.csv"); status != 403 {
			t.Errorf("financial.csv without revenue access: %d %s, want 403", status, body)
		}
	})
	t.Run("tenancy", func(t *testing.T) { testTenancy(t, env) })
	t.Run("pagination", func(t *testing.T) { testPagination(t, env) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, env) })
	t.Run("ops", func(t *testing.T) { testOps(t, env) })
	t.Run("timeout", func(t *testing.T) { testTimeout(t, env) })
	t.Run("usage top", func(t *testing.T) { testUsageTop(t, env) })
	t.Run("sql on current ClickHouse", func(t *testing.T) { testSQLOnChDB(t, env) })
	t.Run("alert sql on current ClickHouse", func(t *testing.T) { testAlertSQLOnChDB(t, env) })
	// The write routes change the fixture: they run last.
	t.Run("validation", func(t *testing.T) { testWriteValidation(t, env) })
	t.Run("acknowledge", func(t *testing.T) { testAcknowledge(t, env) })
	t.Run("alert rules", func(t *testing.T) { testAlertRules(t, env) })
	t.Run("webhooks", func(t *testing.T) { testWebhooks(t, env) })
	t.Run("notification reads", func(t *testing.T) { testNotificationReads(t, env) })
	t.Run("test alerts", func(t *testing.T) { testTestAlerts(t, env) })
}

// testOps: health, readiness, the OpenAPI document, per-route latency
// histograms and gzip.
func testOps(t *testing.T, env *apiEnv) {
	// A request of its own for the histogram, whatever ran before.
	if status, body := env.get(t, "r1", "/v1/overview"); status != 200 {
		t.Fatalf("GET /v1/overview: %d %s", status, body)
	}
	for path, want := range map[string]string{
		"/healthz":      `"status":"ok"`,
		"/readyz":       `"status":"ready"`,
		"/openapi.yaml": "openapi: 3.0.3",
		"/metrics":      `tally_query_request_duration_seconds_count{code="200",route="/v1/overview"}`,
	} {
		status, body := env.get(t, "", path)
		if status != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s: %d, want 200 with %s\n%.500s", path, status, want, body)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/organizations", nil)
	req.Header.Set("Authorization", "Bearer "+env.keys["r1"])
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := env.q.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip: status %d, Content-Encoding %q", res.StatusCode, res.Header.Get("Content-Encoding"))
	}

	// The streamed activity report compresses to the same bytes as sent plain.
	const report = "/v1/reports/activity.csv?from=2026-11-01&to=2026-11-21"
	_, plain := env.get(t, "r1", report)
	req = httptest.NewRequest(http.MethodGet, report, nil)
	req.Header.Set("Authorization", "Bearer "+env.keys["r1"])
	req.Header.Set("Accept-Encoding", "gzip")
	if res, err = env.q.App().Test(req, -1); err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatalf("gzip report: %v (Content-Encoding %q)", err, res.Header.Get("Content-Encoding"))
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) < 100 || !bytes.Equal(unzipped, plain) {
		t.Errorf("gzipped activity report differs from the plain one:\n%s\n---\n%s", unzipped, plain)
	}
}

// testTimeout: a request that outlives Config.RequestTimeout answers 504
// in the common error shape.
func testTimeout(t *testing.T, env *apiEnv) {
	q, err := New(Config{Now: func() time.Time { return fixedNow }, RequestTimeout: time.Nanosecond}, env.ch.Conn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	slow := &apiEnv{q: q, keys: env.keys, ch: env.ch}
	status, body := slow.get(t, "r1", "/v1/usage")
	if status != 504 {
		t.Fatalf("status %d %s, want 504", status, body)
	}
	if !bytes.Contains(body, []byte(`"code":`)) {
		t.Errorf("body %s: want {code, message}", body)
	}
}

// testTenancy: on every route, each reseller sees only its own data, and
// another reseller's organization is a 404 indistinguishable from a
// nonexistent one.
func testTenancy(t *testing.T, env *apiEnv) {
	r1Only := []string{"Acme Media", "Beta Labs", "gamma studio", "whisper-large", "nova-2", "EUR", `"o2"`, `"o3"`,
		"hooks.acme.example", "alice", "wh-r1", "r1-only-error", "…1234"}
	r2Only := []string{"Other Reseller Co", "Ninth", "secret-model", "USD", `"o9"`, "Only for r2",
		"r2-only.example", "wh-r2", "r2-only-error", "…9999", "bob"}
	routes := []string{
		"/v1/overview",
		"/v1/activity",
		"/v1/organizations",
		"/v1/organizations/o1",
		"/v1/usage?group_by=organization,model&granularity=month&from=2026-08-01&to=2026-12-01",
		"/v1/usage?group_by=language&org=o1,o2,o3,o9",
		"/v1/reports/usage.csv?group_by=organization,model&granularity=month&from=2026-08-01&to=2026-12-01",
		"/v1/reports/activity.csv?from=2026-08-01&to=2026-12-01",
		"/v1/notifications",
		"/v1/me",
		"/v1/resellers",
		"/v1/alerts",
		"/v1/alerts?state=firing,resolved,test&acknowledged=true",
		"/v1/alert-rules",
		"/v1/webhooks",
	}
	for _, route := range routes {
		for _, who := range []struct {
			key, reseller string
			mustNot       []string
		}{{"r1", "r1", r2Only}, {"r2", "r2", r1Only}, {"operator", "r1", r2Only}, {"operator", "r2", r1Only}} {
			path := route
			if who.key == "operator" {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				path += sep + "reseller=" + who.reseller
			}
			status, body := env.get(t, who.key, path)
			if status != 200 {
				t.Errorf("%s GET %s: status %d\n%s", who.key, path, status, body)
			}
			for _, s := range who.mustNot {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("%s GET %s: response holds %s, another reseller's data:\n%s", who.key, path, s, body)
				}
			}
		}
	}
	// financial.csv needs revenue access: the operator reads both resellers.
	for reseller, mustNot := range map[string][]string{"r1": r2Only, "r2": r1Only} {
		status, body := env.get(t, "operator", "/v1/reports/financial.csv?from=2026-08-01&to=2026-12-01&reseller="+reseller)
		if status != 200 {
			t.Errorf("operator financial.csv of %s: %d %s", reseller, status, body)
		}
		for _, s := range mustNot {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("operator financial.csv of %s holds %s:\n%s", reseller, s, body)
			}
		}
	}
	_, notFound := env.get(t, "r2", "/v1/organizations/does-not-exist")
	for _, path := range []string{"/v1/organizations/o2", "/v1/organizations/o3"} {
		status, body := env.get(t, "r2", path)
		if status != 404 || !bytes.Equal(body, notFound) {
			t.Errorf("r2 GET %s (an r1 organization): %d %s, want 404 %s like a nonexistent one", path, status, body, notFound)
		}
	}
	status, body := env.get(t, "r1", "/v1/organizations/o9")
	if status != 404 {
		t.Errorf("r1 GET /v1/organizations/o9 (an r2 organization): %d %s, want 404", status, body)
	}
	testWriteTenancy(t, env)
	// Filters naming another reseller's organizations find nothing.
	_, body = env.get(t, "r1", "/v1/activity?org=o9")
	if !bytes.Contains(body, []byte(`"jobs":[]`)) {
		t.Errorf("r1 activity filtered on r2's o9: %s, want no jobs", body)
	}
}

// testPagination walks the activity pages while new jobs arrive: every job
// that existed at the start is seen exactly once.
func testPagination(t *testing.T, env *apiEnv) {
	seen := map[string]int{}
	path := "/v1/activity?limit=3"
	pages := 0
	for {
		status, body := env.get(t, "r1", path)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		var page activityResponse
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			seen[j.OrgID+"/"+j.JobID]++
		}
		if pages++; pages == 1 {
			// A job newer than every page arrives after the first page.
			var f fixtureBuilder
			f.n = 9000
			f.job("r1", "o1", "j99", "u1", "nova-2", "en", "2026-11-20T11:59:00Z", "", "", 10, 0)
			insertEvents(t, env.ch, f.events)
		}
		if page.NextCursor == "" {
			break
		}
		path = "/v1/activity?limit=3&cursor=" + page.NextCursor
	}
	if len(seen) != 10 {
		t.Errorf("saw %d jobs over %d pages, want the 10 that existed at the start: %v", len(seen), pages, seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("job %s seen %d times", k, n)
		}
	}
	if seen["o1/j99"] != 0 {
		t.Errorf("the job that arrived during paging is on a later page, want it only on a fresh first page")
	}
}

func testRevocation(t *testing.T, env *apiEnv) {
	k, secret, err := CreateKey(t.Context(), env.ch.Conn, KeySpec{Name: "temp", ResellerID: "r1"}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	env.keys["temp"] = secret
	if status, body := env.get(t, "temp", "/v1/overview"); status != 200 {
		t.Fatalf("new key: %d %s", status, body)
	}
	if _, err := RevokeKey(t.Context(), env.ch.Conn, k.ID, fixedNow); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _ := env.get(t, "temp", "/v1/overview")
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted after 5s (cache TTL 300ms)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	keys, err := ListKeys(t.Context(), env.ch.Conn)
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, k := range keys {
		if k.Revoked {
			revoked++
		}
	}
	if len(keys) != 5 || revoked != 2 {
		t.Errorf("ListKeys: %d keys, %d revoked; want 5 and 2", len(keys), revoked)
	}
}

// insertAlerts adds alerts as the alerts stage writes them: a quota alert
// of r1 (firing), a resolved spike of r1, and a spike of r2 that r1 must
// never see. The payment_failed alert is left out of the feed (the event
// already is in it).
func insertAlerts(t *testing.T, ch *testenv.CH) {
	t.Helper()
	b, err := ch.Conn.PrepareBatch(t.Context(), "INSERT INTO alerts (alert_key, rule, reseller_id, org_id, period, threshold, state, severity, title, details, first_fired_at, last_seen_at, resolved_at, version)")
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Unix(0, 0).UTC()
	for _, a := range []struct {
		key, rule, reseller, org, state, severity, title string
		fired                                            time.Time
	}{
		{"quota|r1|o1|2026-11-01T00:00:00Z|80", "quota", "r1", "o1", "firing", "warning", "Usage reached 80% of quota: 8000 of 10000 minutes", fixedNow.Add(-2 * time.Hour)},
		{"usage_spike|r1|o2|2026-11-19T10:00:00Z|", "usage_spike", "r1", "o2", "resolved", "warning", "Usage spike: 6x the usual volume for this hour", fixedNow.Add(-26 * time.Hour)},
		{"payment_failed|r1|o1|inv-1|", "payment_failed", "r1", "o1", "firing", "warning", "Payment failed (alert)", fixedNow.Add(-time.Hour)},
		{"usage_spike|r2|o9|2026-11-20T09:00:00Z|", "usage_spike", "r2", "o9", "firing", "warning", "Usage spike Only for r2", fixedNow.Add(-3 * time.Hour)},
	} {
		parts := strings.Split(a.key, "|")
		details, resolved := "{}", zero
		if a.rule == "quota" {
			details = `{"percent":80.5,"plan":"pro","quota_minutes":10000,"used_minutes":8050}`
		}
		if a.state == "resolved" {
			resolved = a.fired.Add(time.Hour)
		}
		if err := b.Append(a.key, a.rule, a.reseller, a.org, parts[3], parts[4], a.state, a.severity, a.title, details, a.fired, a.fired, resolved, uint64(1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
