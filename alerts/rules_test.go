package alerts

import (
	"maps"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// series builds an hourSeries from the evaluated hour and its baseline.
func series(cur float64, base ...float64) hourSeries {
	s := hourSeries{reseller: "r1", org: "o1", completed: append([]float64{cur}, base...), failed: make([]float64, len(base)+1)}
	return s
}

// known marks which baseline weeks are known.
func known(s hourSeries, weeks ...bool) hourSeries {
	s.known = append([]bool{true}, weeks...)
	return s
}

func TestHourFinding(t *testing.T) {
	c := DefaultConfig().Spike
	end := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	withFailures := func(s hourSeries, failed ...float64) hourSeries {
		copy(s.failed, failed)
		return s
	}
	cases := []struct {
		name string
		rule string
		s    hourSeries
		want bool
	}{
		{"steady busy hour", RuleSpike, series(52, 50, 48, 55, 51), false},
		{"5x spike", RuleSpike, series(250, 50, 48, 55, 51), true},
		{"2x is not enough", RuleSpike, series(100, 50, 48, 55, 51), false},
		{"small org 3 jobs vs 0-1", RuleSpike, series(3, 0, 1, 0, 0), false},
		{"small org 15 jobs vs 1", RuleSpike, series(15, 1, 1, 1, 1), false},
		{"noisy baseline absorbs 3x", RuleSpike, series(130, 10, 90, 20, 60), false},
		{"new org without history", RuleSpike, known(series(100, 0, 0, 0, 0), false, false, false, false), false},
		{"busy at an hour it never works", RuleSpike, series(100, 0, 0, 0, 0), true},
		{"small org at an hour it never works", RuleSpike, series(3, 0, 0, 0, 0), false},
		{"one known week: 39 vs 2", RuleSpike, known(series(39, 2, 0, 0, 0), true, false, false, false), true},
		{"no known week", RuleSpike, known(series(39, 2, 0, 0, 0), false, false, false, false), false},
		{"drop of a busy org", RuleDrop, series(2, 50, 48, 55, 51), true},
		{"half is not a drop", RuleDrop, series(25, 50, 48, 55, 51), false},
		{"quiet org cannot drop", RuleDrop, series(0, 5, 4, 6, 5), false},
		{"failure rate spike", RuleFailureRate, withFailures(series(30, 40, 40, 40, 40), 15, 1, 0, 1, 0), true},
		{"usual failure rate", RuleFailureRate, withFailures(series(40, 40, 40, 40, 40), 6, 5, 6, 7, 5), false},
		{"few failures", RuleFailureRate, withFailures(series(2, 3, 3, 3, 3), 3, 0, 0, 0, 0), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			al, got := hourFinding(tc.rule, tc.s, end, c)
			if got != tc.want {
				t.Fatalf("hourFinding = %v (%q), want %v", got, al.Title, tc.want)
			}
			if got && al.Period != "2026-11-23T09:00Z" {
				t.Fatalf("period %q", al.Period)
			}
		})
	}
}

func TestMedianMAD(t *testing.T) {
	cases := []struct {
		name     string
		xs       []float64
		med, mad float64
	}{
		{"odd", []float64{1, 2, 100}, 2, 1},
		{"even", []float64{10, 20, 30, 40}, 25, 10},
		{"empty", nil, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if med, mad := medianMAD(tc.xs); med != tc.med || mad != tc.mad {
				t.Fatalf("medianMAD = %v, %v; want %v, %v", med, mad, tc.med, tc.mad)
			}
		})
	}
}

// spikeData is four weeks and an hour of hourly job events for four
// organizations with a daily cycle (busy 08-18 UTC, quiet at night):
// steady keeps its cycle, spiky runs 5x in the evaluated hour, small runs 3
// jobs where it usually runs none, dropper goes silent and flaky fails a
// third of its jobs. The evaluated hour is 09:00-10:00 on 2026-11-23.
func spikeData(end time.Time) []ev {
	var rows []ev
	start := end.Add(-4*7*24*time.Hour - 2*time.Hour)
	for h := start; h.Before(end); h = h.Add(time.Hour) {
		busy := h.Hour() >= 8 && h.Hour() < 18
		n := 2
		if busy {
			n = 30 + h.Day()%5
		}
		last := !h.Before(end.Add(-time.Hour))
		at := h.Add(10 * time.Minute)
		for _, org := range []string{"steady", "spiky", "dropper", "flaky"} {
			k := n
			switch {
			case last && org == "spiky":
				k = 5 * n
			case last && org == "dropper":
				k = 0
			}
			rows = append(rows, completed("r1", org, at, k, 60000)...)
			if org == "flaky" && last {
				rows = append(rows, failedJobs("r1", org, at, n/2)...)
			}
		}
		if last {
			rows = append(rows, completed("r1", "small", at, 3, 60000)...)
		}
	}
	// heartbeat: one job per bucket from the evaluated hour to an hour after
	// it, so the pipeline looks caught up.
	for b := end.Add(-time.Hour); b.Before(end.Add(time.Hour)); b = b.Add(15 * time.Minute) {
		rows = append(rows, completed("r1", "heartbeat", b.Add(time.Minute), 1, 60000)...)
	}
	return rows
}

func TestHourRulesOnSyntheticSeries(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC)
	h := newHarness(t, now.Add(-h0()))
	insertEvents(t, h.ch, spikeData(hourWindowEnd(now)))
	a := h.newAlerts(t)
	h.evaluate(t, a)
	period := "2026-11-23T09:00Z"
	for rule, want := range map[string]map[string]string{
		RuleSpike:       {AlertKey(RuleSpike, "r1", "spiky", period, ""): StateFiring},
		RuleDrop:        {AlertKey(RuleDrop, "r1", "dropper", period, ""): StateFiring},
		RuleFailureRate: {AlertKey(RuleFailureRate, "r1", "flaky", period, ""): StateFiring},
	} {
		if got := states(h.alerts(t, rule)); !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", rule, got, want)
		}
	}
	// Five hours later without data since: the pipeline is behind, the
	// hour rules skip the window and nothing resolves.
	h.clk.Add(5 * time.Hour)
	h.evaluate(t, a)
	if got := states(h.alerts(t, RuleSpike)); got[AlertKey(RuleSpike, "r1", "spiky", period, "")] != StateFiring {
		t.Errorf("spike while the pipeline is behind: %v", got)
	}
	// An hour after the spike, the spike is over: it resolves.
	h.clk.Add(-4 * time.Hour)
	h.evaluate(t, a)
	if got := states(h.alerts(t, RuleSpike)); got[AlertKey(RuleSpike, "r1", "spiky", period, "")] != StateResolved || len(got) != 1 {
		t.Errorf("spike an hour later: %v", got)
	}
}

// h0 offsets the harness clock so that evaluate's first step lands on now.
func h0() time.Duration { return DefaultConfig().Interval }

func TestLowUsageAndBillingRules(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC)
	h := newHarness(t, now.Add(-h0()))
	day := 24 * time.Hour
	start, end := now.Add(-15*day).Truncate(day), now.Add(15*day).Truncate(day)
	rows := []ev{
		// low: paid, 5 of 1000 minutes at half the period.
		subscription("r1", "low", "pro", "active", 1000, 4900, start, end, start),
		// busy: paid, 600 minutes.
		subscription("r1", "busy", "pro", "active", 1000, 4900, start, end, start),
		// free: unpaid, no usage: never low usage.
		subscription("r1", "free", "free", "active", 100, 0, start, end, start),
		// quiet: paid, last job 10 days ago: no jobs, and low usage in the last 7 days.
		subscription("r1", "quiet", "pro", "active", 100, 4900, start, end, start),
		// payer: payment failed, then paid; failing: failed, unpaid.
		{typ: "invoice.payment_failed", reseller: "r1", org: "payer", time: now.Add(-3 * day), ref: "inv-1", amount: 4900, currency: "EUR", errCode: "card_declined"},
		{typ: "invoice.paid", reseller: "r1", org: "payer", time: now.Add(-2 * day), ref: "inv-1", amount: 4900, currency: "EUR"},
		{typ: "invoice.payment_failed", reseller: "r1", org: "failing", time: now.Add(-day), ref: "inv-2", amount: 9900, currency: "EUR", errCode: "insufficient_funds"},
		{typ: "invoice.payment_failed", reseller: "r1", org: "failing", time: now.Add(-2 * time.Hour), ref: "inv-2", amount: 9900, currency: "EUR", errCode: "insufficient_funds"},
		// ending: past_due, ends in 3 days; gone: expired 2 days ago; renewing: active, ends in 3 days.
		subscription("r1", "ending", "pro", "past_due", 100, 4900, now.Add(-27*day), now.Add(3*day), now.Add(-day)),
		subscription("r1", "gone", "pro", "expired", 100, 4900, now.Add(-32*day), now.Add(-2*day), now.Add(-2*day)),
		subscription("r1", "renewing", "pro", "active", 100, 4900, now.Add(-27*day), now.Add(3*day), now.Add(-27*day)),
	}
	rows = append(rows, completed("r1", "low", now.Add(-day), 5, 60000)...)
	rows = append(rows, completed("r1", "busy", now.Add(-day), 600, 60000)...)
	rows = append(rows, completed("r1", "quiet", now.Add(-10*day), 90, 60000)...)
	rows = append(rows, completed("r1", "renewing", now.Add(-day), 90, 60000)...)
	insertEvents(t, h.ch, rows)
	a := h.newAlerts(t)
	h.evaluate(t, a)
	startKey := start.Format(timeKey)
	for rule, want := range map[string]map[string]string{
		RuleLowUsage:      {AlertKey(RuleLowUsage, "r1", "low", startKey, ""): StateFiring, AlertKey(RuleLowUsage, "r1", "quiet", startKey, ""): StateFiring},
		RuleNoJobs:        {AlertKey(RuleNoJobs, "r1", "quiet", now.Add(-10*day).Format(time.DateOnly), ""): StateFiring},
		RulePaymentFailed: {AlertKey(RulePaymentFailed, "r1", "failing", "inv-2", ""): StateFiring},
		RuleExpiring:      {AlertKey(RuleExpiring, "r1", "ending", now.Add(3*day).Format(timeKey), ""): StateFiring},
		RuleExpired:       {AlertKey(RuleExpired, "r1", "gone", now.Add(-2*day).Format(timeKey), ""): StateFiring},
	} {
		if got := states(h.alerts(t, rule)); !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", rule, got, want)
		}
	}
	// failing pays: its alert resolves.
	insertEvents(t, h.ch, []ev{{typ: "invoice.paid", reseller: "r1", org: "failing", time: now, ref: "inv-2", amount: 9900, currency: "EUR"}})
	h.evaluate(t, a)
	if got := states(h.alerts(t, RulePaymentFailed)); got[AlertKey(RulePaymentFailed, "r1", "failing", "inv-2", "")] != StateResolved {
		t.Errorf("payment failed after payment: %v", got)
	}
}

// notificationFeedSQL is the query service's read of alerts for its
// notifications feed (the query stage owns the real one; this one checks the
// shape runs on both versions): a reseller's alerts of some rules, newest
// first, after a keyset cursor on (first_fired_at, alert_key). reseller_id
// and rule lead the sorting key, so filtering them under FINAL is exact.
const notificationFeedSQL = `SELECT alert_key, rule, org_id, state, severity, title, details, first_fired_at, last_seen_at, resolved_at
FROM alerts FINAL
WHERE reseller_id = ? AND rule IN (SELECT arrayJoin(?))
  AND (first_fired_at < ? OR (first_fired_at = ? AND alert_key < ?))
ORDER BY first_fired_at DESC, alert_key DESC
LIMIT ?`

// TestSQLOnBothVersions runs every rule query on ClickHouse 18.16 and on
// current ClickHouse (chDB) over the same events and compares the results.
func TestSQLOnBothVersions(t *testing.T) {
	ch := testenv.ClickHouse(t)
	now := time.Date(2026, 11, 23, 10, 7, 0, 0, time.UTC)
	day := 24 * time.Hour
	start, end := now.Add(-15*day).Truncate(day), now.Add(15*day).Truncate(day)
	rows := []ev{
		subscription("r1", "a", "pro", "active", 100, 4900, start, end, start),
		subscription("r1", "a", "business", "active", 200, 9900, start, end, now.Add(-day)),
		subscription("r1", "b", "pro", "past_due", 100, 4900, start, now.Add(2*day), start),
		subscription("r2", "c", "pro", "expired", 100, 4900, start.Add(-30*day), start, start),
		{typ: "invoice.payment_failed", reseller: "r1", org: "b", time: now.Add(-day), ref: "inv-1", amount: 4900, currency: "EUR", errCode: "card_declined"},
		{typ: "invoice.paid", reseller: "r1", org: "a", time: now.Add(-day), ref: "inv-2", amount: 9900, currency: "EUR"},
	}
	rows = append(rows, completed("r1", "a", start.Add(-time.Hour), 3, 60000)...)
	rows = append(rows, completed("r1", "a", now.Add(-2*day), 40, 90000)...)
	rows = append(rows, completed("r1", "b", now.Add(-time.Hour), 7, 30000)...)
	rows = append(rows, failedJobs("r1", "b", now.Add(-time.Hour), 2)...)
	rows = append(rows, completed("r1", "b", now.Add(-time.Hour-7*day), 4, 30000)...)
	rows = append(rows, completed("r1", "b", now.Add(-time.Hour-14*day), 5, 30000)...)
	rows = append(rows, completed("r1", "b", now.Add(-30*time.Minute-14*day), 6, 30000)...)
	wend := hourWindowEnd(now)
	queries := []testenv.NamedQuery{
		{Name: "subscription usage", SQL: subscriptionUsageSQL, Args: []any{now, now.Add(-7 * day), now, now, now, now, now}},
		{Name: "last job", SQL: recentLastJobSQL, Args: []any{now.Add(-14 * day), now}},
		{Name: "last job of", SQL: lastJobOfSQL, Args: []any{[]string{"r1", "r2"}, []string{"a", "b"}, now}},
		{Name: "invoices", SQL: invoicesSQL, Args: []any{now.Add(-30 * day), now}},
		{Name: "ending", SQL: endingSubscriptionsSQL, Args: []any{now.Add(-30 * day), now.Add(7 * day)}},
		{Name: "latest bucket", SQL: latestBucketSQL, Args: []any{now.Add(-time.Hour), now}},
		{Name: "first seen", SQL: firstSeenSQL, Args: []any{wend.Add(-4*7*day - time.Hour), wend}},
		{Name: "hour of week", SQL: hourOfWeekSQL, Args: []any{wend.Unix(), wend.Add(-4*7*day - time.Hour), wend, wend.Unix()}},
		{Name: "stored alerts", SQL: storedAlertsSQL, Args: []any{"quota", []string{"quota|r1|a|x|80"}}},
		{Name: "stored alerts no keys", SQL: storedAlertsSQL, Args: []any{"quota", []string{""}}},
		{Name: "webhooks", SQL: webhooksSQL, Args: []any{"r1"}},
		{Name: "settings", SQL: settingsSQL},
		{Name: "feed", SQL: notificationFeedSQL, Args: []any{"r1", []string{"quota", "usage_spike"}, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), "zz", 10}},
		{Name: "delivered", SQL: deliveredSQL, Args: []any{"r1", "w1:k/firing"}},
	}
	setup := []string{
		eventsInsertSQL(t, rows),
		"INSERT INTO alerts (alert_key, rule, reseller_id, org_id, period, threshold, state, severity, title, details, first_fired_at, last_seen_at, resolved_at, version) VALUES " +
			"('quota|r1|a|x|80', 'quota', 'r1', 'a', 'x', '80', 'firing', 'warning', 't', '{}', '2026-11-20 00:00:00', '2026-11-20 00:00:00', '1970-01-01 00:00:00', 1), " +
			"('quota|r1|a|x|80', 'quota', 'r1', 'a', 'x', '80', 'resolved', 'warning', 't', '{}', '2026-11-20 00:00:00', '2026-11-21 00:00:00', '2026-11-21 00:00:00', 2), " +
			"('quota|r1|a|x|90', 'quota', 'r1', 'a', 'x', '90', 'firing', 'warning', 't', '{}', '2026-11-20 00:00:00', '2026-11-20 00:00:00', '1970-01-01 00:00:00', 1), " +
			"('quota|r1|b|x|90', 'quota', 'r1', 'b', 'x', '90', 'resolved', 'warning', 't', '{}', '2026-11-20 00:00:00', '2026-11-20 00:00:00', '2026-11-20 00:00:00', 1)",
		"INSERT INTO alert_webhooks (webhook_id, reseller_id, url, secret, rules, enabled, updated_at, version) VALUES " +
			"('w1', 'r1', 'http://a', 's', ['quota'], 1, '2026-11-20 00:00:00', 1), ('w1', 'r1', 'http://b', 's', [], 1, '2026-11-20 00:00:00', 2), " +
			"('w2', 'r1', 'http://c', 's', [], 1, '2026-11-20 00:00:00', 1), ('w2', 'r1', 'http://c', 's', [], 0, '2026-11-20 00:00:00', 2), " +
			"('w3', 'r2', 'http://d', 's', [], 1, '2026-11-20 00:00:00', 1)",
		"INSERT INTO alert_settings (reseller_id, settings, updated_at, version) VALUES ('r1', '{}', '2026-11-20 00:00:00', 1), ('r1', '{\"no_jobs_days\":3}', '2026-11-20 00:00:00', 2)",
		"INSERT INTO alert_deliveries (delivery_id, webhook_id, reseller_id, alert_key, state, url, attempt, outcome, status_code, error, duration_ms, at) VALUES " +
			"('w1:k/firing', 'w1', 'r1', 'k', 'firing', 'http://b', 1, 'failed', 500, 'x', 3, '2026-11-20 00:00:00'), " +
			"('w1:k/firing', 'w1', 'r1', 'k', 'firing', 'http://b', 2, 'delivered', 200, '', 3, '2026-11-20 00:00:01')",
	}
	res := testenv.CompareWithChDB(t, ch, setup, queries)
	for name, want := range map[string]int{"subscription usage": 2, "last job": 2, "last job of": 2, "invoices": 2, "ending": 2, "hour of week": 3, "first seen": 2, "latest bucket": 1, "stored alerts": 2, "stored alerts no keys": 1, "webhooks": 1, "delivered": 1, "settings": 1, "feed": 3} {
		if got := len(res[name].Rows); got != want {
			t.Errorf("%s: %d rows, want %d: %v", name, got, want, res[name].Rows)
		}
	}
	if got := res["webhooks"].Rows[0]; got[1] != "http://b" || got[3] != "[]" {
		t.Errorf("webhooks: %v", got)
	}
	if got := res["delivered"].Rows[0][0]; got != "1" {
		t.Errorf("delivered: %v", got)
	}
	// a: 40 × 1.5 = 60 minutes in the period (the 3 jobs before it do not count).
	if got := res["subscription usage"].Rows[0]; got[4] != "200" || got[8] != "3600000" || got[9] != "3600000" {
		t.Errorf("subscription usage of a: %v", got)
	}
}

// TestCustomerActivity publishes organization.created and
// subscription.changed events on TALLY_EVENTS and expects each as a
// notification on tally.alerts.<reseller>.customer_activity within seconds.
func TestCustomerActivity(t *testing.T) {
	h := newHarness(t, t0)
	h.cfg.ActivityConsumer = "test-activity"
	if err := stream.Ensure(t.Context(), h.js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	a := h.newAlerts(t)
	go func() { _ = a.runActivity(t.Context()) }()
	time.Sleep(200 * time.Millisecond) // the consumer delivers new events only
	events := []string{
		`{"specversion":"1.0","id":"ev-org-1","type":"organization.created","source":"test","time":"2026-11-23T10:00:00Z","resellerid":"r1","orgid":"o9","data":{"name":"Acme","plan":"pro","status":"trial","created_at":"2026-11-23T10:00:00Z"}}`,
		`{"specversion":"1.0","id":"ev-sub-1","type":"subscription.changed","source":"test","time":"2026-11-23T10:01:00Z","resellerid":"r1","orgid":"o9","data":{"plan":"pro","status":"active","quota_minutes":1000,"price_minor":4900,"currency":"EUR","period_start":"2026-11-23T00:00:00Z","period_end":"2026-12-23T00:00:00Z"}}`,
		`{"specversion":"1.0","id":"ev-job-1","type":"job.created","source":"test","time":"2026-11-23T10:01:00Z","resellerid":"r1","orgid":"o9","data":{"job_id":"j1","user_id":"u1","model":"nova","language":"en","media_duration_seconds":1,"created_at":"2026-11-23T10:01:00Z"}}`,
	}
	for _, raw := range events {
		e, err := schemas.Decode([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.js.Publish(t.Context(), stream.Subject(e), []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		AlertKey(RuleCustomer, "r1", "o9", "ev-org-1", "organization.created"): StateNotice,
		AlertKey(RuleCustomer, "r1", "o9", "ev-sub-1", "subscription.changed"): StateNotice,
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := states(h.alerts(t, RuleCustomer))
		if maps.Equal(got, want) && len(h.published(t, RuleCustomer)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: alerts %v, published %v", got, h.published(t, RuleCustomer))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
