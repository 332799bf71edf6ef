package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/testenv"
)

// TestMigrationsBackfillNewReadModels upgrades a database that holds events
// from before migrations 0011 to 0020: the read models they add must hold
// exactly what their materialized views would have made of those events.
func TestMigrationsBackfillNewReadModels(t *testing.T) {
	ch := testenv.ClickHouse(t)
	cfg := ch.Config
	cfg.Database = ch.Config.Database + "_upgrade"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = ch.Conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
	})
	if _, err := chstore.MigrateUpTo(t.Context(), cfg, quiet, "0010_notification_reads.sql"); err != nil {
		t.Fatalf("migrate to 0010: %v", err)
	}
	conn, err := chstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// 40 jobs over three days, two resellers; every fourth still running,
	// every fifth failed.
	b, err := conn.PrepareBatch(t.Context(), "INSERT INTO events (id, type, time, time_ms, reseller_id, org_id, job_id, user_id, model, language, created_at, media_ms, processing_ms, error_code)")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 10, 30, 22, 0, 0, 0, time.UTC)
	n := 0
	add := func(typ string, at time.Time, j int, created time.Time, media, proc uint64, code string) {
		n++
		r := []string{"r1", "r2"}[j%2]
		if err := b.Append(fmt.Sprintf("ev-%d", n), typ, at, uint64(at.UnixMilli()), r, fmt.Sprintf("o%d", j%3), fmt.Sprintf("job-%d", j),
			fmt.Sprintf("u%d", j%5), []string{"nova-2", "whisper"}[j%2], []string{"en", "de", "fr"}[j%3], created, media, proc, code); err != nil {
			t.Fatal(err)
		}
	}
	for j := range 40 {
		created := t0.Add(time.Duration(j) * 97 * time.Minute)
		add("job.created", created, j, created, 0, 0, "")
		if j%4 == 3 {
			continue
		}
		add("job.started", created.Add(time.Minute), j, created, 0, 0, "")
		if j%5 == 4 {
			add("job.failed", created.Add(20*time.Minute), j, created, 0, uint64(j*1000), "codec")
		} else {
			add("job.completed", created.Add(20*time.Minute), j, created, uint64(j*60000), uint64(j*1000), "")
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	// Subscription and user changes, and an invoice that is neither.
	tb, err := conn.PrepareBatch(t.Context(), "INSERT INTO events (id, type, time, time_ms, reseller_id, org_id, user_id, plan, status, amount_minor, currency, role)")
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"subscription.changed", "user.added", "user.added", "user.removed", "invoice.paid", "subscription.changed"} {
		at := t0.Add(time.Duration(i) * 7 * time.Hour)
		user, role := "", ""
		if typ != "subscription.changed" && typ != "invoice.paid" {
			user, role = fmt.Sprintf("u%d", i%2), "member"
		}
		if err := tb.Append(fmt.Sprintf("tc-%d", i), typ, at, uint64(at.UnixMilli()), []string{"r1", "r2"}[i%2], "o1", user,
			"pro", "active", int64(1000*i), "EUR", role); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.Send(); err != nil {
		t.Fatal(err)
	}

	applied, err := chstore.Migrate(t.Context(), cfg, quiet)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if len(applied) == 0 || applied[0].File != "0011_job_indexes.sql" {
		t.Fatalf("upgrade applied %v, want 0011 first", applied)
	}

	for _, tc := range []struct{ name, got, want string }{
		{"jobs_by_org holds the jobs",
			"SELECT reseller_id, org_id, job_id, status, media_ms FROM jobs_by_org FINAL ORDER BY job_id",
			"SELECT reseller_id, org_id, job_id, status, media_ms FROM jobs FINAL ORDER BY job_id"},
		{"jobs_open holds the unfinished jobs",
			"SELECT job_id FROM jobs_open GROUP BY job_id HAVING sum(open) > 0 ORDER BY job_id",
			"SELECT job_id FROM jobs FINAL WHERE status IN ('created', 'processing') ORDER BY job_id"},
		{"usage_1d sums usage_15m by day",
			"SELECT reseller_id, org_id, day, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_1d GROUP BY reseller_id, org_id, day, model, language ORDER BY reseller_id, org_id, day, model, language",
			"SELECT reseller_id, org_id, toStartOfDay(bucket) AS day, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, org_id, day, model, language ORDER BY reseller_id, org_id, day, model, language"},
		{"usage_1mo sums usage_15m by month",
			"SELECT reseller_id, org_id, month, sumMerge(jobs_created), sumMerge(media_ms), uniqExactMerge(users) FROM usage_1mo GROUP BY reseller_id, org_id, month ORDER BY reseller_id, org_id, month",
			"SELECT reseller_id, org_id, toDateTime(toStartOfMonth(bucket)) AS month, sumMerge(jobs_created), sumMerge(media_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, org_id, month ORDER BY reseller_id, org_id, month"},
		{"usage_15m_by_time equals usage_15m",
			"SELECT reseller_id, org_id, bucket, model, sumMerge(jobs_completed), sumMerge(media_ms) FROM usage_15m_by_time GROUP BY reseller_id, org_id, bucket, model ORDER BY reseller_id, org_id, bucket, model",
			"SELECT reseller_id, org_id, bucket, model, sumMerge(jobs_completed), sumMerge(media_ms) FROM usage_15m GROUP BY reseller_id, org_id, bucket, model ORDER BY reseller_id, org_id, bucket, model"},
		{"usage_month_edges holds usage_15m's buckets within 14 hours of a month start",
			"SELECT reseller_id, org_id, bucket, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(media_ms), uniqExactMerge(users) FROM usage_month_edges GROUP BY reseller_id, org_id, bucket, model, language ORDER BY reseller_id, org_id, bucket, model, language",
			"SELECT reseller_id, org_id, bucket, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(media_ms), uniqExactMerge(users) FROM usage_15m WHERE bucket >= toDateTime('2026-10-31 10:00:00', 'UTC') AND bucket < toDateTime('2026-11-01 14:00:00', 'UTC') GROUP BY reseller_id, org_id, bucket, model, language ORDER BY reseller_id, org_id, bucket, model, language"},
		{"usage_reseller_model_15m sums usage_15m by reseller, model and language",
			"SELECT reseller_id, bucket, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_reseller_model_15m GROUP BY reseller_id, bucket, model, language ORDER BY reseller_id, bucket, model, language",
			"SELECT reseller_id, bucket, model, language, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, bucket, model, language ORDER BY reseller_id, bucket, model, language"},
		{"usage_reseller_15m sums usage_15m by reseller",
			"SELECT reseller_id, bucket, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_reseller_15m GROUP BY reseller_id, bucket ORDER BY reseller_id, bucket",
			"SELECT reseller_id, bucket, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, bucket ORDER BY reseller_id, bucket"},
		{"usage_org_1d sums usage_15m by organization and day",
			"SELECT reseller_id, org_id, day, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_org_1d GROUP BY reseller_id, org_id, day ORDER BY reseller_id, org_id, day",
			"SELECT reseller_id, org_id, toStartOfDay(bucket) AS day, sumMerge(jobs_created), sumMerge(jobs_completed), sumMerge(jobs_failed), sumMerge(media_ms), sumMerge(processing_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, org_id, day ORDER BY reseller_id, org_id, day"},
		{"usage_org_1mo sums usage_15m by organization and month",
			"SELECT reseller_id, org_id, month, sumMerge(jobs_created), sumMerge(jobs_failed), sumMerge(media_ms), uniqExactMerge(users) FROM usage_org_1mo GROUP BY reseller_id, org_id, month ORDER BY reseller_id, org_id, month",
			"SELECT reseller_id, org_id, toDateTime(toStartOfMonth(bucket)) AS month, sumMerge(jobs_created), sumMerge(jobs_failed), sumMerge(media_ms), uniqExactMerge(users) FROM usage_15m GROUP BY reseller_id, org_id, month ORDER BY reseller_id, org_id, month"},
		{"org_user_months has each user's first and last job event of the month",
			"SELECT reseller_id, month, org_id, user_id, minMerge(first_at), maxMerge(last_at) FROM org_user_months GROUP BY reseller_id, month, org_id, user_id ORDER BY reseller_id, month, org_id, user_id",
			"SELECT reseller_id, toDateTime(toStartOfMonth(time)) AS month, org_id, user_id, min(time), max(time) FROM events WHERE type IN ('job.created', 'job.completed', 'job.failed') GROUP BY reseller_id, month, org_id, user_id ORDER BY reseller_id, month, org_id, user_id"},
		{"org_user_days has each user's first and last job event of the day by model and language",
			"SELECT reseller_id, day, org_id, user_id, model, language, minMerge(first_at), maxMerge(last_at) FROM org_user_days GROUP BY reseller_id, day, org_id, user_id, model, language ORDER BY reseller_id, day, org_id, user_id, model, language",
			"SELECT reseller_id, toStartOfDay(time) AS day, org_id, user_id, model, language, min(time), max(time) FROM events WHERE type IN ('job.created', 'job.completed', 'job.failed') GROUP BY reseller_id, day, org_id, user_id, model, language ORDER BY reseller_id, day, org_id, user_id, model, language"},
		{"user_month_slots has the 15-minute slots of each user's job events by month, model and language",
			"SELECT reseller_id, month, org_id, user_id, model, language, arraySort(groupUniqArrayArray(finalizeAggregation(slots))) FROM user_month_slots GROUP BY reseller_id, month, org_id, user_id, model, language ORDER BY reseller_id, month, org_id, user_id, model, language",
			"SELECT reseller_id, toDateTime(toStartOfMonth(time)) AS month, org_id, user_id, model, language, arraySort(groupUniqArray(toUInt32(intDiv(toUInt32(time), 900)))) FROM events WHERE type IN ('job.created', 'job.completed', 'job.failed') GROUP BY reseller_id, month, org_id, user_id, model, language ORDER BY reseller_id, month, org_id, user_id, model, language"},
		{"tenant_changes holds the subscription and user events",
			"SELECT reseller_id, type, org_id, user_id, time, time_ms, id, plan, status, amount_minor, currency, role FROM tenant_changes ORDER BY id",
			"SELECT reseller_id, type, org_id, user_id, time, time_ms, id, plan, status, amount_minor, currency, role FROM events WHERE type IN ('subscription.changed', 'user.added', 'user.removed') ORDER BY id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := testenv.Rows(t, conn, tc.got), testenv.Rows(t, conn, tc.want)
			if len(want) == 0 {
				t.Fatal("reference query returned no rows")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %d rows %v\nwant %d rows %v", len(got), got, len(want), want)
			}
		})
	}

	// A second run applies nothing and copies nothing twice.
	if again, err := chstore.Migrate(t.Context(), cfg, quiet); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate: %v applied, %v", again, err)
	}
}
