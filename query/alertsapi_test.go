package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tallyhq/tally/alertspec"
	"github.com/tallyhq/tally/testenv"
)

// Alert keys of insertAlerts.
const (
	keyQuotaR1   = "quota|r1|o1|2026-11-01T00:00:00Z|80"
	keySpikeR1   = "usage_spike|r1|o2|2026-11-19T10:00:00Z|"
	keyPaymentR1 = "payment_failed|r1|o1|inv-1|"
	keySpikeR2   = "usage_spike|r2|o9|2026-11-20T09:00:00Z|"
)

func batch(t *testing.T, ch *testenv.CH, insert string, rows ...[]any) {
	t.Helper()
	b, err := ch.Conn.PrepareBatch(t.Context(), insert)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := b.Append(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// insertAlertState adds what the alert routes read besides alerts: an
// acknowledgement, rule settings, webhooks (one deleted), deliveries and a
// read notification, for both resellers.
func insertAlertState(t *testing.T, ch *testenv.CH) {
	t.Helper()
	batch(t, ch, insertAlertAckSQL,
		[]any{"r1", keySpikeR1, fixedNow.Add(-20 * time.Hour), "alice", uint64(1)},
		[]any{"r2", keySpikeR2, fixedNow.Add(-time.Hour), "bob", uint64(1)})
	batch(t, ch, insertAlertSettingsSQL,
		[]any{"r1", `{"disabled_rules":["low_usage"],"quota_thresholds":[50,100]}`, fixedNow, uint64(1)},
		[]any{"r2", `{"spike_min_ratio":5}`, fixedNow, uint64(1)})
	batch(t, ch, insertWebhookSQL,
		[]any{"wh-r1", "r1", "https://hooks.acme.example/tally", "r1-secret-abcd1234", []string{"quota"}, uint8(1), fixedNow.Add(-24 * time.Hour), uint64(1)},
		[]any{"wh-gone", "r1", "https://old.acme.example/", "r1-old-secret-0000", []string{}, uint8(1), fixedNow.Add(-48 * time.Hour), uint64(1)},
		[]any{"wh-gone", "r1", "", "", []string{}, uint8(0), fixedNow.Add(-47 * time.Hour), uint64(2)},
		[]any{"wh-r2", "r2", "https://r2-only.example/hook", "r2-secret-wxyz9999", []string{}, uint8(1), fixedNow.Add(-24 * time.Hour), uint64(1)})
	const insertDelivery = `INSERT INTO alert_deliveries (delivery_id, webhook_id, reseller_id, alert_key, state, url, attempt, outcome, status_code, error, duration_ms, at)`
	batch(t, ch, insertDelivery,
		[]any{"wh-r1:" + keyQuotaR1 + "/firing", "wh-r1", "r1", keyQuotaR1, "firing", "https://hooks.acme.example/tally", uint32(1), "failed", uint16(500), "r1-only-error", uint32(120), fixedNow.Add(-2*time.Hour + time.Second)},
		[]any{"wh-r1:" + keyQuotaR1 + "/firing", "wh-r1", "r1", keyQuotaR1, "firing", "https://hooks.acme.example/tally", uint32(2), "delivered", uint16(200), "", uint32(45), fixedNow.Add(-2*time.Hour + 3*time.Second)},
		[]any{"wh-r2:" + keySpikeR2 + "/firing", "wh-r2", "r2", keySpikeR2, "firing", "https://r2-only.example/hook", uint32(1), "failed", uint16(0), "r2-only-error", uint32(10000), fixedNow.Add(-3 * time.Hour)})
	batch(t, ch, insertReadSQL, []any{"r1", "fx-0001", fixedNow.Add(-time.Hour), uint64(0), uint64(1)})
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return v
}

func alertPath(key, suffix string) string { return "/v1/alerts/" + url.PathEscape(key) + suffix }

// testWriteTenancy: on the write routes another reseller's alert or
// webhook answers 404 exactly like a nonexistent one, and a reseller key
// naming another reseller is refused.
func testWriteTenancy(t *testing.T, env *apiEnv) {
	cases := []struct {
		name, method, path, missing, body string
	}{
		{"acknowledge", "POST", alertPath(keyQuotaR1, "/acknowledge"), alertPath("quota|r2|nope||", "/acknowledge"), ""},
		{"put webhook", "PUT", "/v1/webhooks/wh-r1", "/v1/webhooks/nope", `{"enabled":false}`},
		{"delete webhook", "DELETE", "/v1/webhooks/wh-r1", "/v1/webhooks/nope", ""},
		{"test webhook", "POST", "/v1/webhooks/wh-r1/test", "/v1/webhooks/nope/test", ""},
		{"deliveries", "GET", "/v1/webhooks/wh-r1/deliveries", "/v1/webhooks/nope/deliveries", ""},
		{"deleted webhook", "GET", "/v1/webhooks/wh-gone/deliveries", "/v1/webhooks/nope/deliveries", ""},
	}
	for _, tc := range cases {
		for _, who := range []struct{ key, query string }{{"r2", ""}, {"operator", "?reseller=r2"}} {
			t.Run(tc.name+" as "+who.key, func(t *testing.T) {
				_, want := env.do(t, tc.method, who.key, tc.missing+who.query, tc.body)
				status, body := env.do(t, tc.method, who.key, tc.path+who.query, tc.body)
				if status != 404 || !bytes.Equal(body, want) {
					t.Errorf("%s %s: %d %s, want 404 %s like a nonexistent one", tc.method, tc.path, status, body, want)
				}
			})
		}
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/me"}, {"GET", "/v1/resellers"}, {"GET", "/v1/webhooks"}, {"POST", "/v1/webhooks"},
		{"PUT", "/v1/alert-rules/quota"}, {"POST", "/v1/notifications/read"}, {"POST", alertPath(keySpikeR2, "/acknowledge")},
	} {
		status, body := env.do(t, r.method, "r1", r.path+"?reseller=r2", `{"all":true}`)
		if status != 403 {
			t.Errorf("r1 %s %s?reseller=r2: %d %s, want 403", r.method, r.path, status, body)
		}
	}
	// Settings of one reseller never show for the other.
	_, body := env.get(t, "r2", "/v1/alert-rules")
	if bytes.Contains(body, []byte("[50,100]")) {
		t.Errorf("r2 sees r1's quota thresholds: %s", body)
	}
}

// testWriteValidation: bad bodies and parameters are 400s naming the field.
func testWriteValidation(t *testing.T, env *apiEnv) {
	cases := []struct {
		name, method, path, body string
		status                   int
		param                    string
	}{
		{"webhook ftp url", "POST", "/v1/webhooks", `{"url":"ftp://x.example/"}`, 400, "url"},
		{"webhook url without host", "POST", "/v1/webhooks", `{"url":"https://"}`, 400, "url"},
		{"webhook without url", "POST", "/v1/webhooks", `{}`, 400, "url"},
		{"webhook url not a string", "POST", "/v1/webhooks", `{"url":5}`, 400, "url"},
		{"webhook unknown rule", "POST", "/v1/webhooks", `{"url":"https://a.example","rules":["nope"]}`, 400, "rules"},
		{"webhook short secret", "POST", "/v1/webhooks", `{"url":"https://a.example","secret":"short"}`, 400, "secret"},
		{"webhook unknown field", "POST", "/v1/webhooks", `{"url":"https://a.example","colour":1}`, 400, "colour"},
		{"webhook not json", "POST", "/v1/webhooks", `not json`, 400, ""},
		{"webhook no body", "POST", "/v1/webhooks", ``, 400, ""},
		{"webhook put bad url", "PUT", "/v1/webhooks/wh-r1", `{"url":"mailto:x@example.com"}`, 400, "url"},
		{"rule threshold 0", "PUT", "/v1/alert-rules/quota", `{"settings":{"quota_thresholds":[0]}}`, 400, "settings.quota_thresholds"},
		{"rule no thresholds", "PUT", "/v1/alert-rules/quota", `{"settings":{"quota_thresholds":[]}}`, 400, "settings.quota_thresholds"},
		{"rule foreign setting", "PUT", "/v1/alert-rules/quota", `{"settings":{"low_usage_share":0.5}}`, 400, "settings.low_usage_share"},
		{"rule share 2", "PUT", "/v1/alert-rules/low_usage", `{"settings":{"low_usage_share":2}}`, 400, "settings.low_usage_share"},
		{"rule days string", "PUT", "/v1/alert-rules/no_jobs", `{"settings":{"no_jobs_days":"7"}}`, 400, "settings.no_jobs_days"},
		{"rule ratio 1", "PUT", "/v1/alert-rules/usage_spike", `{"settings":{"spike_min_ratio":1}}`, 400, "settings.spike_min_ratio"},
		{"rule without settings", "PUT", "/v1/alert-rules/payment_failed", `{"settings":{"x":1}}`, 400, "settings.x"},
		{"rule enabled string", "PUT", "/v1/alert-rules/quota", `{"enabled":"yes"}`, 400, "enabled"},
		{"rule path mismatch", "PUT", "/v1/alert-rules/quota", `{"rule":"no_jobs"}`, 400, "rule"},
		{"unknown rule", "PUT", "/v1/alert-rules/nope", `{}`, 404, ""},
		{"create unknown rule", "POST", "/v1/alert-rules", `{"rule":"nope"}`, 400, "rule"},
		{"create overridden rule", "POST", "/v1/alert-rules", `{"rule":"quota"}`, 409, "rule"},
		{"read nothing", "POST", "/v1/notifications/read", `{}`, 400, "ids"},
		{"read both", "POST", "/v1/notifications/read", `{"ids":["a"],"all":true}`, 400, "ids"},
		{"read ids not strings", "POST", "/v1/notifications/read", `{"ids":[1]}`, 400, "ids"},
		{"acknowledge by number", "POST", alertPath(keyQuotaR1, "/acknowledge"), `{"by":5}`, 400, "by"},
		{"acknowledge unknown", "POST", alertPath("nope", "/acknowledge"), ``, 404, ""},
		{"test unknown rule", "POST", "/v1/alert-rules/nope/test", ``, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := env.do(t, tc.method, "r1", tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, status, body, tc.status)
			}
			e := decodeJSON[APIError](t, body)
			if e.Param != tc.param || e.Message == "" || e.Code == "" {
				t.Errorf("%s %s %s: %s, want param %q", tc.method, tc.path, tc.body, body, tc.param)
			}
		})
	}
}

// testAcknowledge: an acknowledgement round trip; the first one stands.
func testAcknowledge(t *testing.T, env *apiEnv) {
	status, body := env.do(t, "POST", "r1", alertPath(keyQuotaR1, "/acknowledge"), `{"by":"carol"}`)
	if status != 200 {
		t.Fatalf("acknowledge: %d %s", status, body)
	}
	a := decodeJSON[alertItem](t, body)
	if a.Key != keyQuotaR1 || a.AcknowledgedBy == nil || *a.AcknowledgedBy != "carol" || a.AcknowledgedAt == nil || !a.AcknowledgedAt.Equal(fixedNow) {
		t.Fatalf("acknowledged alert %s", body)
	}
	_, again := env.do(t, "POST", "r1", alertPath(keyQuotaR1, "/acknowledge"), "")
	if !bytes.Equal(again, body) {
		t.Errorf("second acknowledgement %s, want the first kept: %s", again, body)
	}
	status, body = env.do(t, "POST", "operator", alertPath(keyPaymentR1, "/acknowledge")+"?reseller=r1", "")
	if a := decodeJSON[alertItem](t, body); status != 200 || a.AcknowledgedBy == nil || *a.AcknowledgedBy != "ops" {
		t.Fatalf("operator acknowledgement: %d %s, want acknowledged_by the key name ops", status, body)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"acknowledged=true", []string{keyPaymentR1, keyQuotaR1, keySpikeR1}},
		{"acknowledged=false", []string{}},
	} {
		_, body := env.get(t, "r1", "/v1/alerts?state=firing,resolved&"+tc.query)
		var got []string
		for _, a := range decodeJSON[alertsResponse](t, body).Alerts {
			got = append(got, a.Key)
		}
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("alerts?%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	// r2's acknowledgement of its own alert is untouched.
	_, body = env.get(t, "r2", "/v1/alerts")
	if !bytes.Contains(body, []byte(`"acknowledged_by":"bob"`)) {
		t.Errorf("r2 alerts: %s", body)
	}
}

func ruleOf(t *testing.T, env *apiEnv, key, rule string) ruleItem {
	t.Helper()
	_, body := env.get(t, key, "/v1/alert-rules")
	for _, r := range decodeJSON[rulesResponse](t, body).Rules {
		if r.Rule == rule {
			return r
		}
	}
	t.Fatalf("rule %s missing: %s", rule, body)
	return ruleItem{}
}

func storedSettings(t *testing.T, env *apiEnv, reseller string) alertspec.ResellerSettings {
	t.Helper()
	var raw string
	if err := env.ch.Conn.QueryRow(t.Context(), alertSettingsSQL, reseller).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var rs alertspec.ResellerSettings
	if err := json.Unmarshal([]byte(raw), &rs); err != nil || rs.Validate() != nil {
		t.Fatalf("stored settings %s: %v %v", raw, err, rs.Validate())
	}
	return rs
}

// testAlertRules: override, read back, shared settings, delete, create.
func testAlertRules(t *testing.T, env *apiEnv) {
	num := func(vs ...float64) []any {
		out := make([]any, len(vs))
		for i, v := range vs {
			out[i] = v
		}
		return out
	}
	status, body := env.do(t, "PUT", "r2", "/v1/alert-rules/quota", `{"enabled":false,"settings":{"quota_thresholds":[75]}}`)
	r := decodeJSON[ruleItem](t, body)
	if status != 200 || r.Enabled || !r.Overridden || !reflect.DeepEqual(r.Settings["quota_thresholds"], num(75)) ||
		!reflect.DeepEqual(r.Defaults["quota_thresholds"], num(80, 90, 100)) {
		t.Fatalf("PUT quota: %d %s", status, body)
	}
	if got := ruleOf(t, env, "r2", "quota"); !reflect.DeepEqual(got, r) {
		t.Errorf("GET after PUT: %+v, want %+v", got, r)
	}
	if rs := storedSettings(t, env, "r2"); !rs.Disabled("quota") || !slices.Equal(rs.QuotaThresholds, []int{75}) || rs.SpikeMinRatio != 5 {
		t.Errorf("stored settings %+v: want quota disabled at 75%% and r2's spike ratio kept", rs)
	}
	if got := ruleOf(t, env, "r1", "quota"); !reflect.DeepEqual(got.Settings["quota_thresholds"], num(50, 100)) || !got.Enabled {
		t.Errorf("r1's quota rule changed by r2: %+v", got)
	}
	// spike_min_jobs is shared by usage_spike and usage_drop.
	if status, body := env.do(t, "PUT", "r2", "/v1/alert-rules/usage_drop", `{"settings":{"spike_min_jobs":7}}`); status != 200 {
		t.Fatalf("PUT usage_drop: %d %s", status, body)
	}
	if got := ruleOf(t, env, "r2", "usage_spike"); got.Settings["spike_min_jobs"] != 7.0 || got.Settings["spike_min_ratio"] != 5.0 {
		t.Errorf("usage_spike after usage_drop's min jobs: %+v", got)
	}
	status, body = env.do(t, "DELETE", "r2", "/v1/alert-rules/quota", "")
	r = decodeJSON[ruleItem](t, body)
	if status != 200 || !r.Enabled || r.Overridden || !reflect.DeepEqual(r.Settings, r.Defaults) {
		t.Fatalf("DELETE quota: %d %s", status, body)
	}
	status, body = env.do(t, "POST", "r2", "/v1/alert-rules", `{"rule":"quota","settings":{"quota_thresholds":[60]}}`)
	if r := decodeJSON[ruleItem](t, body); status != 201 || !r.Overridden || !reflect.DeepEqual(r.Settings["quota_thresholds"], num(60)) {
		t.Fatalf("POST quota: %d %s", status, body)
	}
	if status, body := env.do(t, "POST", "r2", "/v1/alert-rules", `{"rule":"quota"}`); status != 409 {
		t.Errorf("POST quota again: %d %s, want 409", status, body)
	}
	if status, body := env.do(t, "PUT", "r2", "/v1/alert-rules/customer_activity", `{"enabled":false}`); status != 200 || !storedSettings(t, env, "r2").Disabled("customer_activity") {
		t.Errorf("disable customer_activity: %d %s", status, body)
	}
}

// testWebhooks: create (secret once), list (hint only), update, test a
// disabled one, delete.
func testWebhooks(t *testing.T, env *apiEnv) {
	status, body := env.do(t, "POST", "r1", "/v1/webhooks", `{"url":"https://example.com/h","rules":["usage_spike","quota"]}`)
	w := decodeJSON[webhookItem](t, body)
	if status != 201 || !strings.HasPrefix(w.Secret, secretPrefix) || len(w.Secret) != len(secretPrefix)+48 ||
		w.SecretHint != "…"+w.Secret[len(w.Secret)-4:] || !slices.Equal(w.Rules, []string{"quota", "usage_spike"}) || !w.Enabled ||
		!w.UpdatedAt.Equal(fixedNow) {
		t.Fatalf("POST webhook: %d %s", status, body)
	}
	// The alerts stage reads the same row.
	var secret string
	var enabled uint8
	if err := env.ch.Conn.QueryRow(t.Context(), "SELECT secret, enabled FROM alert_webhooks FINAL WHERE reseller_id = 'r1' AND webhook_id = ?", w.ID).Scan(&secret, &enabled); err != nil || secret != w.Secret || enabled != 1 {
		t.Fatalf("stored webhook: %q %d %v", secret, enabled, err)
	}
	_, list := env.get(t, "r1", "/v1/webhooks")
	if !bytes.Contains(list, []byte(w.ID)) || bytes.Contains(list, []byte(w.Secret)) || bytes.Contains(list, []byte(`"secret"`)) {
		t.Fatalf("list shows the secret or misses the webhook: %s", list)
	}
	status, body = env.do(t, "PUT", "r1", "/v1/webhooks/"+w.ID, `{"enabled":false}`)
	if u := decodeJSON[webhookItem](t, body); status != 200 || u.Enabled || u.URL != w.URL || u.Secret != "" || u.SecretHint != w.SecretHint {
		t.Fatalf("PUT enabled=false: %d %s", status, body)
	}
	if status, body := env.do(t, "POST", "r1", "/v1/webhooks/"+w.ID+"/test", ""); status != 409 {
		t.Errorf("test a disabled webhook: %d %s, want 409", status, body)
	}
	status, body = env.do(t, "PUT", "r1", "/v1/webhooks/"+w.ID, `{"secret":"0123456789abcdefXYZ","rules":[]}`)
	if u := decodeJSON[webhookItem](t, body); status != 200 || u.Secret != "0123456789abcdefXYZ" || u.SecretHint != "…fXYZ" || len(u.Rules) != 0 {
		t.Fatalf("PUT secret: %d %s", status, body)
	}
	if status, body := env.do(t, "DELETE", "r1", "/v1/webhooks/"+w.ID, ""); status != 204 {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	if _, list := env.get(t, "r1", "/v1/webhooks"); bytes.Contains(list, []byte(w.ID)) {
		t.Errorf("deleted webhook listed: %s", list)
	}
	for _, m := range []string{"PUT", "DELETE"} {
		if status, _ := env.do(t, m, "r1", "/v1/webhooks/"+w.ID, `{}`); status != 404 {
			t.Errorf("%s a deleted webhook: %d, want 404", m, status)
		}
	}
	status, body = env.do(t, "POST", "r1", "/v1/webhooks", `{"url":"http://localhost:9/x","secret":"my-own-secret-123456","enabled":false}`)
	if w := decodeJSON[webhookItem](t, body); status != 201 || w.Secret != "my-own-secret-123456" || w.Enabled || len(w.Rules) != 0 {
		t.Fatalf("POST with a secret: %d %s", status, body)
	}
}

// testNotificationReads: per-item and all reads, per reseller.
func testNotificationReads(t *testing.T, env *apiEnv) {
	feed := func(key string) notificationsResponseRead {
		t.Helper()
		_, body := env.get(t, key, "/v1/notifications?limit=500")
		return decodeJSON[notificationsResponseRead](t, body)
	}
	f := feed("r1")
	r2Before := feed("r2").Unread
	var unreadIDs []string
	for _, n := range f.Notifications {
		if n.ID == "fx-0001" && !n.Read {
			t.Errorf("fx-0001 is marked read in the fixture: %+v", n)
		}
		if !n.Read {
			unreadIDs = append(unreadIDs, n.ID)
		}
	}
	if int(f.Unread) != len(unreadIDs) || len(unreadIDs) < 2 {
		t.Fatalf("unread %d, %d unread items: %v", f.Unread, len(unreadIDs), unreadIDs)
	}
	status, body := env.do(t, "POST", "r1", "/v1/notifications/read", fmt.Sprintf(`{"ids":[%q,%q]}`, unreadIDs[0], unreadIDs[0]))
	if u := decodeJSON[unreadResponse](t, body); status != 200 || int(u.Unread) != len(unreadIDs)-1 {
		t.Fatalf("read one: %d %s, want unread %d", status, body, len(unreadIDs)-1)
	}
	for _, n := range feed("r1").Notifications {
		if n.ID == unreadIDs[0] && !n.Read {
			t.Errorf("%s not read after marking it", n.ID)
		}
	}
	status, body = env.do(t, "POST", "r1", "/v1/notifications/read", `{"all":true}`)
	if u := decodeJSON[unreadResponse](t, body); status != 200 || u.Unread != 0 {
		t.Fatalf("read all: %d %s", status, body)
	}
	f = feed("r1")
	for _, n := range f.Notifications {
		if !n.Read {
			t.Errorf("%s unread after read all", n.ID)
		}
	}
	if f.Unread != 0 {
		t.Errorf("unread %d after read all", f.Unread)
	}
	// Read state is per reseller, platform-wide notices included.
	if got := feed("r2").Unread; got != r2Before || got == 0 {
		t.Errorf("r2 unread %d, was %d: r1's reads leaked", got, r2Before)
	}
}

type notificationsResponseRead struct {
	Notifications []struct {
		ID, Kind, Type, State string
		Read                  bool
	} `json:"notifications"`
	Unread uint64 `json:"unread"`
}

// testTestAlerts: test alerts are published on TALLY_ALERTS, recorded, and
// shown in /v1/alerts and the feed; without NATS the routes are 503s.
func testTestAlerts(t *testing.T, env *apiEnv) {
	lastAlert := func(subject string) alertspec.Alert {
		t.Helper()
		s, err := env.js.Stream(t.Context(), alertspec.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(t.Context(), subject)
		if err != nil {
			t.Fatalf("no message on %s: %v", subject, err)
		}
		var al alertspec.Alert
		if err := json.Unmarshal(m.Data, &al); err != nil {
			t.Fatal(err)
		}
		return al
	}
	for _, tc := range []struct{ rule, kind string }{{"quota", "usage"}, {"payment_failed", "billing"}, {"customer_activity", "customer"}} {
		t.Run(tc.rule, func(t *testing.T) {
			status, body := env.do(t, "POST", "r1", "/v1/alert-rules/"+tc.rule+"/test", "")
			key := decodeJSON[testAlertResponse](t, body).AlertKey
			if status != 202 || !strings.HasPrefix(key, tc.rule+"|r1||test-") {
				t.Fatalf("test-fire: %d %s", status, body)
			}
			al := lastAlert(alertspec.Subject("r1", tc.rule))
			if al.Key != key || al.State != alertspec.StateTest || al.Title != "Test alert" || al.Details["test"] != true || al.ResellerID != "r1" {
				t.Fatalf("published %+v", al)
			}
			_, body = env.get(t, "r1", "/v1/notifications?kind="+tc.kind)
			found := false
			for _, n := range decodeJSON[notificationsResponseRead](t, body).Notifications {
				found = found || (n.ID == key && n.Kind == tc.kind && n.State == alertspec.StateTest)
			}
			if !found {
				t.Errorf("test alert %s not in the %s feed: %s", key, tc.kind, body)
			}
			if tc.rule != alertspec.RuleCustomer {
				_, body = env.get(t, "r1", "/v1/alerts?state=test&rule="+tc.rule)
				if a := decodeJSON[alertsResponse](t, body).Alerts; len(a) != 1 || a[0].Key != key || string(a[0].Details) != `{"test":true}` {
					t.Errorf("/v1/alerts?state=test: %s", body)
				}
			}
		})
	}
	status, body := env.do(t, "POST", "r1", "/v1/webhooks/wh-r1/test", "")
	if status != 202 {
		t.Fatalf("webhook test: %d %s", status, body)
	}
	if al := lastAlert(alertspec.Subject("r1", "quota")); al.WebhookID != "wh-r1" || al.Key != decodeJSON[testAlertResponse](t, body).AlertKey {
		t.Errorf("webhook test published %+v, want webhook_id wh-r1", al)
	}
	if _, body := env.get(t, "r2", "/v1/alerts?state=test"); !bytes.Contains(body, []byte(`"alerts":[]`)) {
		t.Errorf("r2 sees r1's test alerts: %s", body)
	}
	q, err := New(Config{Now: func() time.Time { return fixedNow }}, env.ch.Conn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	noNATS := &apiEnv{q: q, keys: env.keys, ch: env.ch}
	for _, path := range []string{"/v1/alert-rules/quota/test", "/v1/webhooks/wh-r1/test"} {
		status, body := noNATS.do(t, "POST", "r1", path, "")
		if e := decodeJSON[APIError](t, body); status != 503 || e.Code != "unavailable" || !strings.Contains(e.Message, "NATS") {
			t.Errorf("POST %s without NATS: %d %s, want 503", path, status, body)
		}
	}
}

// testAlertSQLOnChDB: the alert, webhook and read-state SELECTs give the
// same rows on ClickHouse 18.16 and current ClickHouse.
func testAlertSQLOnChDB(t *testing.T, env *apiEnv) {
	setup := eventsInserts(t, env.ch)
	for _, table := range []string{"alerts", "alert_acks", "alert_settings", "alert_webhooks", "alert_deliveries", "notification_reads"} {
		setup = append(setup, tableInserts(t, env.ch, table)...)
	}
	ch := testenv.ClickHouse(t)
	var queries []testenv.NamedQuery
	add := func(name, sql string, args ...any) {
		queries = append(queries, testenv.NamedQuery{Name: name, SQL: sql, Args: args})
	}
	add("resellers", resellersSQL)
	add("reseller", resellerSQL, "r1")
	add("settings", alertSettingsSQL, "r1")
	add("webhooks", webhooksListSQL, "r1")
	add("webhook", webhookSQL, "r1", "wh-r1")
	add("deliveries", deliveriesSQL, "r1", "wh-r1", 50)
	add("acks", alertAcksSQL+"\nORDER BY alert_key", "r1", []string{keyQuotaR1, keySpikeR1})
	add("read state", readStateSQL+"\nORDER BY notification_id", "r1", []string{"", "fx-0001", "fx-0002"})
	yes, no := true, false
	for i, aq := range []alertsQuery{
		{reseller: "r1", limit: 100},
		{reseller: "r1", states: []string{"firing"}, rules: []string{"quota", "usage_spike"}, orgs: []string{"o1"}, limit: 100},
		{reseller: "r1", acknowledged: &yes, period: "2026-11-19T10:00:00Z", limit: 100},
		{reseller: "r1", acknowledged: &no, keys: []string{keyQuotaR1}, limit: 100},
		{reseller: "r1", after: &noteCursor{timeMS: uint64(fixedNow.Add(-time.Hour).UnixMilli()), id: keyPaymentR1}, limit: 100},
	} {
		sql, args := aq.build()
		add(fmt.Sprintf("alerts %d", i), sql, args...)
	}
	nq, aq := allFeed("r1")
	sql, args := unreadEventsSQL(nq, uint64(fixedNow.Add(-17*24*time.Hour).UnixMilli()))
	add("unread events", sql, args...)
	sql, args = unreadAlertsSQL(aq, 0)
	add("unread alerts", sql, args...)
	aq.limit = 100
	sql, args = aq.build()
	add("alert notifications with tests", sql, args...)
	aq.rules = nil
	sql, args = aq.build()
	add("alert notifications tests only", sql, args...)
	res := testenv.CompareWithChDB(t, ch, setup, queries)
	for name, want := range map[string]int{"resellers": 2, "webhooks": 2, "deliveries": 2, "alerts 0": 3, "alerts 1": 1, "alerts 2": 1, "alerts 3": 1, "alerts 4": 2} {
		if got := len(res[name].Rows); got != want {
			t.Errorf("query %s: %d rows, want %d", name, got, want)
		}
	}
}

func TestAlertsQueryBuild(t *testing.T) {
	const head = `SELECT alert_key, any(rule) AS a_rule, any(org_id) AS a_org, any(period) AS a_period, any(threshold) AS a_threshold,
    argMax(state, version) AS a_state, argMax(severity, version) AS a_severity, argMax(title, version) AS a_title,
    argMax(details, version) AS a_details, min(first_fired_at) AS a_first, argMax(last_seen_at, version) AS a_last,
    argMax(resolved_at, version) AS a_resolved
FROM alerts`
	const tail = `
GROUP BY alert_key
ORDER BY a_first DESC, alert_key DESC
LIMIT ?`
	cases := []struct {
		name     string
		q        alertsQuery
		wantSQL  string
		wantArgs []any
	}{
		{
			name: "all of a reseller's",
			q:    alertsQuery{reseller: "r1", limit: 51},
			wantSQL: head + `
WHERE reseller_id = ?
  AND rule != ?` + tail,
			wantArgs: []any{"r1", alertspec.RuleCustomer, 51},
		},
		{
			name: "one organization's, by rule and state: the organization first, as PREWHERE",
			q:    alertsQuery{reseller: "r1", orgs: []string{"o1"}, rules: []string{"quota"}, states: []string{"firing"}, limit: 20},
			wantSQL: head + `
PREWHERE org_id IN (SELECT arrayJoin(?))
WHERE reseller_id = ?
  AND rule != ?
  AND rule IN (SELECT arrayJoin(?))
GROUP BY alert_key
HAVING a_state IN (SELECT arrayJoin(?))
ORDER BY a_first DESC, alert_key DESC
LIMIT ?`,
			wantArgs: []any{[]string{"o1"}, "r1", alertspec.RuleCustomer, []string{"quota"}, []string{"firing"}, 20},
		},
		{
			name: "one key of an organization",
			q:    alertsQuery{reseller: "r1", keys: []string{"k1"}, orgs: []string{"o1"}, period: "p", limit: 1},
			wantSQL: head + `
PREWHERE alert_key IN (SELECT arrayJoin(?))
  AND org_id IN (SELECT arrayJoin(?))
WHERE reseller_id = ?
  AND rule != ?
  AND period = ?` + tail,
			wantArgs: []any{[]string{"k1"}, []string{"o1"}, "r1", alertspec.RuleCustomer, "p", 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sql, args := tc.q.build()
			checkBuilt(t, sql, args, tc.wantSQL, tc.wantArgs)
		})
	}
}
